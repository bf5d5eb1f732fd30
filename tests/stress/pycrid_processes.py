"""pycrid's own processes on the machine: the fork server, its helper children (named
"pycrid-<kind>" by the fork server), and a census of everything ever seen below a fork server, so
that processes orphaned by a killed fork server are still found at the end.

Container processes are never helpers: a process is one when its cgroup is named after a container
pycrid has a record of (root/container-records/<id>.json), which also covers a container's init
before its execve (still named pycrid-container) and an exec'd command before its own.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from runtime.errors import PycridError
from runtime.linux import proc
from runtime.process.client import ForkServer

HELPER_PREFIX = "pycrid-"
_ID = re.compile(r"[0-9a-f]{64}")


def forkserver_pid(state: Path) -> int | None:
    """The fork server's pid as it answers itself, None when nothing answers on its socket."""
    try:
        return ForkServer(str(state / "forkserver.sock")).ping()
    except PycridError:
        return None


def container_ids(root: Path) -> set[str]:
    return {p.stem for p in (root / "container-records").glob("*.json") if _ID.fullmatch(p.stem)}


def in_container_cgroup(pid: int, containers: set[str]) -> bool:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(found in containers for found in _ID.findall(text))


def cgroup_members(cgroups: tuple[str, ...] | list[str]) -> list[int]:
    """Pids in any of these cgroup directories."""
    found: set[int] = set()
    for cgroup in cgroups:
        try:
            found |= {int(p) for p in Path(cgroup, "cgroup.procs").read_text().split()}
        except OSError:
            pass
    return sorted(found)


def helpers(forkserver: int, root: Path, comm: str = "") -> list[proc.ProcStat]:
    """The fork server's live pycrid-* descendants that are not container processes; only those
    named `comm` when given."""
    containers = container_ids(root)
    return [s for s in proc.descendants(forkserver)
            if s.comm.startswith(HELPER_PREFIX) and (not comm or s.comm == comm) and s.state not in "ZX"
            and not in_container_cgroup(s.pid, containers)]


def monitors(state: Path) -> list[proc.ProcStat]:
    """Every live pod monitor of the pycrid whose run dir is ``state``, wherever its fork server
    went: one the chaos killed leaves its monitors behind, and the new one's descendants are only
    the monitors of pods made since. A monitor is a fork of its fork server: same command line,
    which ends in the server's socket path (NUL-separated words when exec'd, one space-separated
    title when forked from the agent: runtime/linux/proctitle.py)."""
    ending = b" " + str(state / "forkserver.sock").encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        s = proc.read_stat(int(entry))
        if s is None or s.comm != "pycrid-monitor" or s.state in "ZX":
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.rstrip(b"\0").replace(b"\0", b" ").endswith(ending):
            found.append(s)
    return found


class Census:
    """(pid, start time) of every process seen below a fork server, and of the fork servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, int], str] = {}

    def take(self, forkserver: int | None) -> None:
        if forkserver is None:
            return
        found = list(proc.descendants(forkserver))
        if (me := proc.read_stat(forkserver)) is not None:
            found.append(me)
        with self._lock:
            for s in found:
                self._seen[(s.pid, s.start_time)] = s.comm

    def survivors(self) -> list[str]:
        """Those still alive (same pid and start time, not a zombie): '<pid> <comm>'."""
        with self._lock:
            seen = dict(self._seen)
        return sorted(f"{pid} {comm}" for (pid, start), comm in seen.items() if proc.is_alive(pid, start))

    def survivor_pids(self) -> list[int]:
        with self._lock:
            seen = list(self._seen)
        return [pid for pid, start in seen if proc.is_alive(pid, start)]
