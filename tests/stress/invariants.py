"""What must hold after the run, asked of pycrid and checked against the machine:
the agent answers Status with RuntimeReady true; every RUNNING container has a live init, no
EXITED one has, and nothing runs in the cgroup of a CREATED one but the init its create set up and
holds, which has run nothing of the image (still pycrid's Python); every ready sandbox has its
pinned network namespace (and its pause process, when it shares one PID namespace); no hostile log
path produced a file."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cri.api.v1 import api_pb2 as pb
from runtime.linux import proc
from tests.e2e.leaks import container_cgroups
from tests.stress.cri_client import CriClient
from tests.stress.pycrid_processes import cgroup_members, in_container_cgroup

_PYTHON = os.readlink("/proc/self/exe")  # the interpreter pycrid runs on, as this harness does
SETTLE = 1.0  # a container that just exited is RUNNING until its exit is recorded


def runtime_ready(client: CriClient, within: float = 10.0) -> str | None:
    deadline, last = time.monotonic() + within, ""
    while time.monotonic() < deadline:
        reply = client.call("Status", pb.StatusRequest(), 5.0)
        if reply.response is not None:
            conditions = {c.type: c for c in reply.response.status.conditions}
            ready = conditions.get("RuntimeReady")
            if ready is not None and ready.status:
                return None
            last = f"RuntimeReady {ready}" if ready else "no RuntimeReady condition"
        else:
            last = f"{reply.answer.code}: {reply.answer.message}"
        time.sleep(0.2)
    return f"Status did not report RuntimeReady true within {within:.0f}s (last: {last})"


def _alive(pid: int) -> bool:
    stat = proc.read_stat(pid) if pid > 0 else None
    return stat is not None and stat.state not in "ZX"


def _held_init(pid: int) -> bool:
    """A prepared init: the pod monitor's fork (its name), which has not exec'd (its binary)."""
    stat = proc.read_stat(pid)
    try:
        return stat is not None and stat.comm == "pycrid-init" and os.readlink(f"/proc/{pid}/exe") == _PYTHON
    except OSError:
        return False


def _container(client: CriClient, container_id: str) -> tuple[int, int] | None:
    """(state, pid) as ContainerStatus(verbose) reports it, None when it is gone."""
    request = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
    reply = client.call("ContainerStatus", request, 10.0)
    if reply.response is None:
        return None
    return reply.response.status.state, int(json.loads(reply.response.info["info"]).get("pid") or 0)


def container_problems(client: CriClient) -> list[str]:
    listed = client.call("ListContainers", pb.ListContainersRequest(), 10.0).response
    if listed is None:
        return ["ListContainers failed after the run"]
    problems = []
    for c in listed.containers:
        seen = _container(client, c.id)
        if seen is None:
            continue
        state, pid = seen
        if state == pb.CONTAINER_RUNNING and not _alive(pid):
            time.sleep(SETTLE)
            again = _container(client, c.id)
            if again is not None and again[0] == pb.CONTAINER_RUNNING and not _alive(again[1]):
                problems.append(f"container {c.id} is RUNNING but its init (pid {again[1]}) is not alive")
        elif state == pb.CONTAINER_EXITED and _alive(pid) and in_container_cgroup(pid, {c.id}):
            problems.append(f"container {c.id} is EXITED but its init (pid {pid}) still runs")
        elif state == pb.CONTAINER_CREATED:
            inside = cgroup_members(container_cgroups({c.id}))
            if len([p for p in inside if _held_init(p)]) > 1 or any(not _held_init(p) for p in inside):
                problems.append(f"container {c.id} is CREATED but other processes than its held init run in "
                                f"its cgroup: {inside}")
    return problems


def sandbox_problems(client: CriClient) -> list[str]:
    listed = client.call("ListPodSandbox", pb.ListPodSandboxRequest(), 10.0).response
    if listed is None:
        return ["ListPodSandbox failed after the run"]
    mounts = set(proc.mount_points())
    problems = []
    for s in listed.items:
        if s.state != pb.SANDBOX_READY:
            continue
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=s.id, verbose=True)
        reply = client.call("PodSandboxStatus", request, 10.0)
        if reply.response is None:
            continue
        info = json.loads(reply.response.info["info"])
        netns, pause = info["paths"]["netns"], int(info.get("pausePid") or 0)
        if netns and netns not in mounts:
            problems.append(f"sandbox {s.id} is ready but its network namespace {netns} is not pinned")
        if info["paths"]["pidns"] and not _alive(pause):
            problems.append(f"sandbox {s.id} is ready but its pause process (pid {pause}) is not alive")
    return problems


def escaped_logs(base: Path, marker: str) -> list[Path]:
    """Files hostile log paths asked for, outside any pod log directory (under base or /tmp)."""
    return sorted([*base.rglob(f"{marker}*"), *Path("/tmp").glob(f"{marker}*")])
