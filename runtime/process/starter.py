"""Starting a container: a short-lived child of the pod monitor forks the container's init into the
right PID namespace, has it join its cgroup (v1: init does so itself), waits until it has exec'd,
reports init's pid to the monitor and exits. Init then becomes the monitor's child (the monitor is
a subreaper), so the monitor reaps it and records its exit.

The starter leads a process group of its own that init shares: a start that overruns its deadline
is ended, init included, by one killpg from the monitor.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from runtime.cgroups.manager import new_manager
from runtime.cgroups.selfjoin import close_all, open_tasks_files
from runtime.errors import FailedPrecondition, Internal, InvalidArgument, PycridError, ResourceExhausted
from runtime.linux import constants as k
from runtime.linux.poll import wait_readable
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.process import init, protocol
from runtime.process.initspec import InitSpec

# What a failed init may call its error: the container's config or image is at fault. A name that
# is missing from the image is a bad argument too (NotFound would say the container is gone).
_INIT_ERRORS: dict[str, type[PycridError]] = {
    "InvalidArgument": InvalidArgument, "NotFound": InvalidArgument,
    "FailedPrecondition": FailedPrecondition, "ResourceExhausted": ResourceExhausted}
NEW, HOST = "new", "host"


def run_starter(raw: dict[str, Any], pid_namespace: str | int, stdio: tuple[int, int, int],
                report: socket.socket, hold: bool = False) -> int:
    """In a fresh child of the monitor: `raw` is the InitSpec as a dict (built here, not in the
    long-lived monitor), `pid_namespace` NEW, HOST or a namespace fd to join, `stdio` init's (null
    or stdin, stdout, stderr write ends). ``hold``: a prepared start; once init is set up, report
    {"pid", "created"} and wait for the monitor's "go" (or the end of ``report``: discarded)."""
    os.setsid()
    marks: list[tuple[str, float]] = [("starter.fork", time.monotonic())]

    def wait_for_go(pid: int) -> None:
        protocol.send(report, {"pid": pid, "created": True, "marks": marks})
        marks.clear()
        if report.recv(64) != protocol.GO:
            raise Internal("the prepared start was discarded")
        marks.append(("starter.go", time.monotonic()))

    try:
        spec = InitSpec.from_dict(raw)
        marks.append(("starter.spec", time.monotonic()))
        if spec.restore is not None and hold:
            raise InvalidArgument(f"container {spec.id}: a restore from a checkpoint is not prepared, only started")
        if spec.restore is not None:  # a checkpointed container: CRIU makes its PID namespace itself
            # Loaded here, not in the fork server every monitor shares: CRIU's driver brings
            # subprocess and shutil, which no other child uses. The restored process keeps the
            # identity it had; no init reports one.
            from runtime.checkpoint.restorer import restore

            pid, terminal, user = restore(spec, stdio, LinuxSyscalls()), -1, None
        else:
            pid, terminal, user = start(spec, pid_namespace, stdio, LinuxSyscalls(), marks,
                                        wait_for_go if hold else None)
    except Exception as e:  # noqa: BLE001 - the monitor passes the reason on as the CRI error
        protocol.send(report, protocol.error_message(e))
        return 1
    marks.append(("starter.exec", time.monotonic()))
    protocol.send(report, {"pid": pid, "started_at": time.time_ns(), "user": user, "marks": marks},
                  (terminal,) if terminal >= 0 else ())
    return 0


def start(spec: InitSpec, pid_namespace: str | int, stdio: tuple[int, int, int],
          syscalls: Syscalls, marks: list[tuple[str, float]] | None = None,
          hold: Callable[[int], None] | None = None) -> tuple[int, int, dict[str, Any]]:
    """Forks init in the right PID namespace, puts it in its cgroup and waits until it has exec'd:
    (init's pid, the master of its terminal or -1, the user init became). When each step ended
    (ours and init's) is added to ``marks``. With ``hold``, init waits once set up until
    ``hold(its pid)`` returns, which raises if it is not to go on."""
    marks = [] if marks is None else marks
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # On v1 init moves itself into its cgroup, a hundred times faster than we could (selfjoin.py).
    tasks = open_tasks_files(new_manager(), spec.cgroup) if spec.cgroup else []
    enter_pid_namespace(pid_namespace, syscalls)
    marks.append(("starter.prepare", time.monotonic()))
    pid = os.fork()
    if pid == 0:
        ours.close()
        init.run(spec, theirs, stdio, syscalls, tasks, hold is not None)
    close_all(tasks)
    theirs.close()
    try:
        if spec.cgroup and not tasks:
            join_cgroup(spec.cgroup, pid, ours)
        try:
            ours.send(protocol.JOINED)
        except OSError:
            pass  # init already failed and closed its end: its report is waiting to be read
        terminal, user = wait_for_exec(ours, marks, None if hold is None else lambda: hold(pid))
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        ours.close()
    return pid, terminal, user


def join_cgroup(cgroup: str, pid: int, sync: socket.socket) -> None:
    """Moves init into the container's cgroups while it sets up; if it failed (and exited) first,
    its own report says why better than the cgroup write that then fails."""
    try:
        new_manager().add_process(cgroup, pid)
    except Exception:
        if wait_readable([sync], 0.5):
            wait_for_exec(sync)
        raise


def enter_pid_namespace(where: str | int, syscalls: Syscalls) -> None:
    """Our next child is PID 1 of a new namespace, or joins the given one; we stay where we are."""
    if where == HOST:
        return
    if where == NEW:
        syscalls.unshare(k.CLONE_NEWPID)
        return
    if not isinstance(where, int):
        raise Internal(f"unknown PID namespace {where!r}")
    syscalls.setns(where, k.CLONE_NEWPID)


def wait_for_exec(sync: socket.socket, marks: list[tuple[str, float]] | None = None,
                  hold: Callable[[], None] | None = None) -> tuple[int, dict[str, Any]]:
    """Init's "ready" (with the user it became) then EOF means execve succeeded (init's end is
    close-on-exec); any other message is a failure. A TTY container's init sends its terminal's
    master first; a held one (``hold`` given) says "created" before its "ready", and is told to
    go on once ``hold()`` returns. Returns (that master or -1, the user as init reported it);
    init's marks (when each of its steps ended) are added to ``marks``."""
    terminal = -1
    user: dict[str, Any] | None = None
    try:
        while True:
            data, fds, _, _ = socket.recv_fds(sync, protocol.MAX_MESSAGE, 1)
            if data == protocol.TERMINAL and fds and terminal < 0:
                terminal = fds[0]
                continue
            for fd in fds:
                os.close(fd)
            message = json.loads(data) if data.startswith(b"{") else None
            if hold is not None and user is None and isinstance(message, dict) and "created" in message:
                if marks is not None:
                    marks.extend((str(m[0]), float(m[1])) for m in message.get("marks", ()))
                hold()
                hold = None
                with contextlib.suppress(OSError):  # init died meanwhile: its report or EOF follows
                    sync.send(protocol.GO)
                continue
            if user is None and isinstance(message, dict) and isinstance(message.get("ready"), dict):
                user = message["ready"]
                if marks is not None:
                    marks.extend((str(m[0]), float(m[1])) for m in message.get("marks", ()))
                continue
            if user is not None and not data:
                return terminal, user
            raise _failure(data, message)
    except BaseException:
        if terminal >= 0:
            os.close(terminal)
        raise


def _failure(data: bytes, message: Any) -> PycridError:
    if isinstance(message, dict) and "error" in message:
        cls = _INIT_ERRORS.get(str(message.get("error_class", "")), Internal)
        return cls(f"container init failed at {message.get('phase')}: {message['error']}")
    return Internal("container init exited during set-up" if not data else f"unexpected {data!r}")
