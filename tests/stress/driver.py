"""A chaos run from start to verdict: a local registry and a real pycrid, N workers making seeded
random CRI calls over gRPC while the chaos thread kills the agent or its helpers, then the
invariants, the clean-up through the CRI, the leak check, and a summary.

Never hangs: every RPC has a deadline, the run stops handing out calls at `timeout`, and threads
that still do not finish are reported, not waited for.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cri.api.v1 import api_pb2 as pb
from runtime.process.client import ForkServer
from tests.e2e import leaks
from tests.e2e.leaks import Leftovers
from tests.e2e.registry import local_registry
from tests.stress import configs, invariants
from tests.stress.agent import Agent
from tests.stress.budget import Budget
from tests.stress.chaos import Chaos, schedule
from tests.stress.cri_client import CriClient
from tests.stress.pycrid_processes import Census, cgroup_members, forkserver_pid
from tests.stress.scrub import scrub
from tests.stress.sequence import HOSTILE_SHARE, Sequence
from tests.stress.tally import Summary, Tally, Violation
from tests.stress.world import World

IMAGES = ("library/busybox:1", "pause:3.10")  # what the registry needs: busybox and the sandbox image
HOST_SYSCTL = "vm.swappiness"  # node-wide: hostile pods ask for its current value (configs.Context)
STRAGGLER_SECONDS = 90.0  # longest RPC deadline plus margin


@dataclass(frozen=True)
class Options:
    base: Path
    calls: int = 600
    threads: int = 8
    seed: int = 1
    kills: int = 3
    targets: tuple[str, ...] = ("agent",)
    hostile_share: float = HOSTILE_SHARE  # of the drawn calls, the rest have valid arguments
    helper_recovery: float = 5.0  # how long a killed helper's dependants may answer UNAVAILABLE
    timeout: float = 600.0  # no new calls after this many seconds
    max_pods: int = 12
    max_containers_per_pod: int = 3


def run(o: Options) -> Summary:
    with local_registry(o.base / "registry", IMAGES) as registry:
        agent = Agent(o.base / "pycrid", registry)
        try:
            return _run(o, agent, registry)
        finally:
            if agent.daemon.process.poll() is None:  # _run failed before its clean-up
                agent.daemon.stop()


def _run(o: Options, agent: Agent, registry: str) -> Summary:
    started = time.monotonic()
    ctx = configs.Context(o.base / "logs", registry,
                          (HOST_SYSCTL, Path(f"/proc/sys/{HOST_SYSCTL.replace('.', '/')}").read_text().strip()))
    client = CriClient(agent.daemon.socket)
    pulled = client.call("PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=configs.IMAGE)), 120.0)
    if pulled.response is None:
        raise RuntimeError(f"cannot pull {configs.IMAGE}: {pulled.answer}")
    world = World(o.max_pods, o.max_containers_per_pod)
    budget, tally, census = Budget(o.calls), Tally(o.seed), Census()
    chaos = Chaos(o.seed, schedule(o.seed, o.calls, o.kills, o.targets), agent, budget, census, o.helper_recovery)
    workers = [threading.Thread(target=_work, name=f"worker-{w}", daemon=True,
                                args=(Sequence(o.seed, w, world, ctx, o.hostile_share), client, budget, agent, tally))
               for w in range(o.threads)]
    chaos.start()
    for w in workers:
        w.start()
    incomplete = _join(workers, started + o.timeout, budget, tally)
    chaos.stop.set()
    chaos.join(STRAGGLER_SECONDS)
    tally.judge(agent.windows())
    _check_invariants(agent, client, tally, ctx)
    leaked = _clean_up(agent, census, tally, ctx)
    client.close()
    return Summary(o.seed, o.threads, time.monotonic() - started, tally, chaos.kills, chaos.skipped,
                   leaked, incomplete)


def _work(sequence: Sequence, client: CriClient, budget: Budget, agent: Agent, tally: Tally) -> None:
    worker, n = sequence.worker, 0
    try:
        while budget.take() is not None:
            call = sequence.next()
            reply = client.call(call.method, call.request, call.timeout)
            tally.record(worker, n, call, reply.answer)
            n += 1
            if reply.response is not None:
                sequence.answered(call, reply.response)
            elif reply.answer.code == "UNAVAILABLE" and not agent.up.is_set():
                agent.up.wait(30)  # do not burn the budget on calls to a socket nobody serves
    except Exception as e:  # noqa: BLE001 - a harness bug must fail the run, not vanish in a thread
        tally.flag(Violation(f"harness error: {type(e).__name__}: {e}",
                             f"seed {sequence.seed} worker {worker} call #{n}"))


def _join(workers: list[threading.Thread], deadline: float, budget: Budget, tally: Tally) -> str:
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    if not any(w.is_alive() for w in workers):
        return ""
    budget.close()
    spent = budget.handed_out()
    for w in workers:
        w.join(STRAGGLER_SECONDS)
    stuck = [w.name for w in workers if w.is_alive()]
    if stuck:
        tally.flag(Violation(f"still in a call {STRAGGLER_SECONDS:.0f}s after the run's timeout: {stuck}",
                             "harness"))
    return f"timed out after {spent} of {budget.calls} calls"


def _check_invariants(agent: Agent, client: CriClient, tally: Tally, ctx: configs.Context) -> None:
    if agent.daemon.process.poll() is not None:
        tally.flag(Violation(f"pycrid serve died on its own (exit {agent.daemon.process.returncode})", "agent"))
        agent.restart()
    elif forkserver_pid(agent.daemon.state) is None:
        tally.flag(Violation("the fork server is dead at the end of the run and the agent did not replace it",
                             "fork server"))
        if invariants.runtime_ready(client, within=1.0) is None:
            tally.flag(Violation("Status reports RuntimeReady true while the fork server is dead", "runtime ready"))
        agent.restart()  # today only the agent's start-up starts one; the clean-up needs it
    not_ready = invariants.runtime_ready(client)
    if not_ready:
        tally.flag(Violation(not_ready, "runtime ready"))
    for problem in invariants.container_problems(client) + invariants.sandbox_problems(client):
        tally.flag(Violation(problem, "status vs processes"))


def _clean_up(agent: Agent, census: Census, tally: Tally, ctx: configs.Context) -> list[str]:
    """Removes everything through the CRI, stops pycrid, and returns what was left behind."""
    daemon = agent.daemon
    census.take(forkserver_pid(daemon.state))
    ids = set(re.findall(r"[0-9a-f]{64}", daemon.log_path.read_text()))
    try:
        left, _ = leaks.remove_everything(daemon)
    except Exception as e:  # noqa: BLE001 - reported, then what is left is found and scrubbed
        said = getattr(e, "stderr", "") or ""
        tally.flag(Violation(f"removing everything through the CRI failed: {type(e).__name__}: {e} {said}"[:3000],
                             "clean-up"))
        left = _leftovers(agent.base, daemon.bridge, ids)
        if daemon.process.poll() is None:
            daemon.stop()
        if forkserver_pid(daemon.state) is not None:
            ForkServer(str(daemon.state / "forkserver.sock")).shutdown()
    deadline = time.monotonic() + 3
    while census.survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = invariants.escaped_logs(agent.base.parent, configs.escape_marker(ctx.log_root))
    for path in stray:
        tally.flag(Violation(f"a container log was written outside its pod's log directory: {path}", "log paths"))
    leaked = [f"process outside any live fork server: {p}" for p in census.survivors()]
    leaked += [f"process in a leftover cgroup: {p}" for p in cgroup_members(left.cgroups)]
    leaked += [f"{what}: {item}" for what, items in (
        ("mount", left.mounts), ("process", left.processes), ("zombie", left.zombies),
        ("cgroup", left.cgroups), ("veth", left.veths), ("nft rule", left.rules)) for item in items]
    scrub(agent.base, daemon.bridge, ids, left, census.survivor_pids(), stray)
    return leaked


def _leftovers(base: Path, bridge: str, ids: set[str]) -> Leftovers:
    """What leaks.remove_everything would have found, when it could not finish: the pods are still
    there, so every mount, cgroup, veth and rule of this pycrid is listed."""
    return Leftovers(mounts=leaks.mounts_under(str(base)), processes=(), zombies=(),
                     cgroups=leaks.container_cgroups(ids), veths=leaks.bridge_ports(bridge),
                     rules=leaks.pod_rules(bridge))
