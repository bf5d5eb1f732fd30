"""The pod monitor's side of starting the pod's pause (runtime/sandbox/pause.py): it forks the
pause itself, as PID 1 of the pod's new PID namespace (pidnsfork.py), and holds that namespace by
a descriptor from then on. The pause's set-up (joining the pod, pivoting, dropping privileges)
runs in the pause; the monitor, whose loop must never block, hears of its end on the sync socket
(handled as it becomes readable, read_sync): READY with the pause's start time (read by the pause
itself: parsing /proc stat here would make pages the monitor shares its own), and with the sandbox
image's pause binary also EOF, when its exec closes its close-on-exec end. Anything else is a
failed set-up.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, NoReturn

from runtime.cgroups.manager import new_manager
from runtime.cgroups.selfjoin import open_tasks_files
from runtime.linux.proc import start_time
from runtime.linux.syscalls import Syscalls
from runtime.process import protocol
from runtime.process.children import Children
from runtime.process.pidnsfork import fork_pid1
from runtime.sandbox.pause import confine, report_failure
from runtime.sandbox.userns import PAUSE_ID

# Made on import, in the fork server, for every pause and container start (podrequests.py) to use:
# building one (a realpath of each hierarchy) costs ~0.4 MiB of pages made private.
CGROUPS = new_manager()


@dataclass
class PauseSetUp:
    """A pause between its fork and the end of its set-up. Not frozen: ``ready`` records its
    READY while the EOF of its exec is awaited."""

    namespace: int  # its PID namespace, held from its fork on (-1 once handed to the monitor)
    execs: bool  # it execs the pause binary: EOF must follow READY
    ready: bool = False
    start_time: int = 0  # the pause's, from its READY

    def take_namespace(self) -> int:
        fd, self.namespace = self.namespace, -1
        return fd

    def close(self) -> None:
        if self.namespace >= 0:
            os.close(self.take_namespace())


def start_pause(raw: dict[str, Any], children: Children, syscalls: Syscalls) -> tuple[int, socket.socket, PauseSetUp]:
    """Forks the pause as PID 1 of a new PID namespace: (its pid, the sync socket to wait on, its
    set-up). raw: {"id": sandbox id, "root": an empty directory to pivot into,
    "namespaces": {"user"|"net"|"ipc"|"uts": pinned namespace file}, "cgroup": its cgroup, made
    already (optional), "lowerdirs": the sandbox image's snapshots (optional), "argv": its pause
    command, "user": the uid and gid to run as (optional; 65535)}."""
    cgroup = str(raw.get("cgroup", ""))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        pid, namespace = fork_pid1(
            lambda: children.fork(b"pycrid-pause", lambda: _pid1(raw, theirs, syscalls), (theirs.fileno(),),
                                  reported=True),
            syscalls, lambda pid: abandon(children, pid))
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    if cgroup and CGROUPS.version == "v2":  # no file to join by: it is moved from here
        try:
            CGROUPS.add_process(cgroup, pid)
        except BaseException:
            abandon(children, pid)
            os.close(namespace)
            ours.close()
            raise
    return pid, ours, PauseSetUp(namespace, bool(raw.get("argv")))


def _pid1(raw: dict[str, Any], sync: socket.socket, syscalls: Syscalls) -> NoReturn:
    """The pause, first thing: it opens what it joins (the pod's pinned namespaces, and on cgroup
    v1 its cgroup's tasks files) while it still shares the monitor's mount namespace, as the
    monitor could; done there, that work would make ~0.2 MiB of the pages the monitor shares with
    the fork server its own, for the life of the pod."""
    try:
        started = start_time("self")  # /proc is still the host's: the same as the agent reads
        if started is None:
            raise RuntimeError("no start time in /proc/self/stat")
        namespaces = {kind: os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                      for kind, path in raw.get("namespaces", {}).items()}
        cgroup = str(raw.get("cgroup", ""))
        tasks = open_tasks_files(CGROUPS, cgroup) if cgroup else []
    except BaseException as e:  # noqa: BLE001 - the monitor reports it
        report_failure(sync, e)
    confine(str(raw["root"]), tuple(raw.get("lowerdirs", ())), tuple(raw.get("argv", ())), namespaces, tasks, sync,
            protocol.pause_ready(started), syscalls, int(raw.get("user", PAUSE_ID)))


def read_sync(sync: socket.socket, set_up: PauseSetUp) -> bool:
    """Reads the pause's next word: True when its set-up is done, False while its exec's EOF is
    still to come; RuntimeError "pause set-up failed: ..." for anything else (its error, or an
    end before READY). READY's start time goes to ``set_up``."""
    try:
        answer = sync.recv(protocol.MAX_MESSAGE)
    except OSError as e:
        raise RuntimeError(f"pause set-up failed: reading its sync socket: {e}") from e
    word, _, started = answer.partition(b" ")
    if not set_up.ready and word == protocol.READY and started.isdigit():
        set_up.ready, set_up.start_time = True, int(started)
        return not set_up.execs
    if set_up.ready and answer == b"":  # the pause binary was exec'd
        return True
    raise RuntimeError(f"pause set-up failed: {answer.decode(errors='replace') or 'no answer'}")


def abandon(children: Children, pid: int) -> None:
    """Kills a pause that is not to be the pod's (and with its PID 1, anything in its namespace);
    its exit is reaped, not reported."""
    children.kill(pid)
    children.forget(pid)
