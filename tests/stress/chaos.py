"""The chaos: SIGKILLs of the agent and of pycrid's helpers at seeded points of the run.

The schedule is seeded: kill k happens when the run has handed out call number at_call[k], and its
target is drawn from the configured set. Which helper process is hit (a monitor, a pause, an exec
helper, ...) depends on what runs at that moment. A kill that finds no target (no monitor exists
yet) is counted as skipped.

Between kills the chaos thread takes a census of the fork server's descendants, so that the final
check finds processes a killed fork server orphaned.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass

from tests.stress.agent import Agent
from tests.stress.budget import Budget
from tests.stress.pycrid_processes import Census, forkserver_pid, helpers, monitors

TARGETS = ("agent", "forkserver", "monitor", "any-helper")
CENSUS_EVERY = 0.3


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
        pending = list(self.plan)
        while not self.stop.is_set():
            if pending and self.budget.handed_out() >= pending[0].at_call:
                self._kill(pending.pop(0).target)
            else:
                self.census.take(forkserver_pid(self.agent.daemon.state))
                self.stop.wait(CENSUS_EVERY)

    def _kill(self, target: str) -> None:
        if target == "agent":
            self.agent.kill_and_restart(self.rng.uniform(0.0, 1.0))
            self.kills[target] += 1
            return
        daemon = self.agent.daemon
        server = forkserver_pid(daemon.state)
        self.census.take(server)
        if server is None:
            self.skipped[target] += 1
            return
        if target == "forkserver":
            pid, what = server, target
        else:
            found = monitors(daemon.state) if target == "monitor" else helpers(server, daemon.root)
            if not found:
                self.skipped[target] += 1
                return
            hit = self.rng.choice(sorted(found, key=lambda s: s.pid))
            pid, what = hit.pid, f"{target} ({hit.comm})"
        killed = time.monotonic()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self.skipped[target] += 1
            return
        self.agent.outage(killed, killed + self.helper_recovery, f"{what} {pid} killed")
        self.kills[what] += 1
