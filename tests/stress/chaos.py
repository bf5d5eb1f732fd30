"""The chaos: SIGKILLs of the agent and of pycrid's helpers at seeded points of the run.

The schedule is seeded: kill k happens when the run has handed out call number at_call[k] (the
budget holds the next numbers until the chaos thread sees that point), and its target is drawn from
the configured set. Which helper process is hit (a monitor, a pause, an exec
helper, ...) depends on what runs at that moment. A kill that finds no target (no monitor exists
at that moment) waits and tries again until it finds one; only a kill still waiting when the calls
have run out is counted as skipped.

Between kills the chaos thread takes a census of the fork server's descendants, so that the final
check finds processes a killed fork server orphaned.
"""
from __future__ import annotations

import functools
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tests.stress.agent import Agent
from tests.stress.budget import Budget
from tests.stress.pycrid_processes import Census, forkserver_pid, helpers, monitors

TARGETS = ("agent", "forkserver", "monitor", "any-helper")
CENSUS_EVERY = 0.3
RETRY_EVERY = 0.05  # how often the chaos thread looks at the run's progress and for a kill's target


@dataclass(frozen=True)
class Kill:
    at_call: int
    target: str


def schedule(seed: int, calls: int, kills: int, targets: tuple[str, ...]) -> list[Kill]:
    """`kills` kills spread over the middle 80% of the calls, each at a distinct call number."""
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise ValueError(f"unknown kill targets {sorted(unknown)}; choose from {TARGETS}")
    if not targets or kills <= 0:
        return []
    rng = random.Random(f"{seed}:chaos")
    span = range(calls // 10, max(calls * 9 // 10, calls // 10 + 1))
    points = sorted(rng.sample(span, min(kills, len(span))))
    return [Kill(p, rng.choice(targets)) for p in points]


class Chaos(threading.Thread):
    def __init__(self, seed: int, plan: list[Kill], agent: Agent, budget: Budget, census: Census,
                 helper_recovery: float) -> None:
        super().__init__(name="chaos", daemon=True)
        self.plan = plan
        self.agent, self.budget, self.census = agent, budget, census
        self.helper_recovery = helper_recovery
        self.rng = random.Random(f"{seed}:chaos-targets")
        self.kills: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        done = 0
        try:
            for kill in self.plan:
                self.budget.hold_at(kill.at_call)
                if not self._wait_for(self.budget.held):
                    break
                self.budget.release()  # the calls go on while the kill lands
                if not self._wait_for(functools.partial(self._kill, kill.target)):
                    break
                done += 1
            self._wait_for(lambda: False)  # census until the run ends
        finally:
            self.budget.release()
            for kill in self.plan[done:]:
                self.skipped[kill.target] += 1

    def _wait_for(self, ready: Callable[[], bool]) -> bool:
        """Polls ``ready`` until it holds (True) or the run ends (False), taking the census as it waits."""
        census_due = 0.0
        while not self.stop.is_set():
            if ready():
                return True
            if time.monotonic() >= census_due:
                self.census.take(forkserver_pid(self.agent.daemon.state))
                census_due = time.monotonic() + CENSUS_EVERY
            self.stop.wait(RETRY_EVERY)
        return False

    def _kill(self, target: str) -> bool:
        """False when there was nothing to kill at this moment."""
        if target == "agent":
            self.agent.kill_and_restart(self.rng.uniform(0.0, 1.0))
            self.kills[target] += 1
            return True
        daemon = self.agent.daemon
        server = forkserver_pid(daemon.state)
        self.census.take(server)
        if server is None:
            return False
        if target == "forkserver":
            pid, what = server, target
        else:
            found = monitors(daemon.state) if target == "monitor" else helpers(server, daemon.root)
            if not found:
                return False
            hit = self.rng.choice(sorted(found, key=lambda s: s.pid))
            pid, what = hit.pid, f"{target} ({hit.comm})"
        killed = time.monotonic()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.agent.outage(killed, killed + self.helper_recovery, f"{what} {pid} killed")
        self.kills[what] += 1
        return True
