"""Starting a container: a short-lived fork-server child forks the container's init into the right
PID namespace, has it join its cgroup (v1: init does so itself), waits until it has exec'd, hands
its stdio pipes and its exit
over to the fork server (runtime/process/monitor.py), reports to the agent and exits.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Any

from runtime.cgroups.manager import new_manager
from runtime.cgroups.selfjoin import close_all, open_tasks_files
from runtime.linux import constants as k
from runtime.linux.poll import wait_readable
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.process import init, protocol
from runtime.process.client import SERVER_ENV, ForkServer
from runtime.process.initspec import HOST, InitSpec


def run_container(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target. fds: [report]."""
    report = socket.socket(fileno=fds[0])
    spec = InitSpec.from_dict(raw)
    try:
        pid, pipes = start(spec, LinuxSyscalls())
        try:
            ForkServer(os.environ[SERVER_ENV]).adopt(pid, spec.exit_file, spec.log_path, pipes)
        finally:
            for fd in pipes:
                os.close(fd)
    except Exception as e:  # noqa: BLE001 - the agent gets the reason as its CRI error
        protocol.send(report, {"error": str(e)})
        return 1
    protocol.send(report, {"ok": {"pid": pid, "started_at": time.time_ns()}})
    return 0


def start(spec: InitSpec, syscalls: Syscalls) -> tuple[int, dict[int, bytes]]:
    """Forks init in the right PID namespace, puts it in its cgroup and waits until it has exec'd."""
    if spec.log_path:
        os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # On v1 init moves itself into its cgroup, a hundred times faster than we could (selfjoin.py).
    tasks = open_tasks_files(new_manager(), spec.cgroup) if spec.cgroup else []
    enter_pid_namespace(spec.namespaces.pid, syscalls)
    pid = os.fork()
    if pid == 0:
        ours.close()
        init.run(spec, theirs, (null, out_w, err_w), syscalls, tasks)
    for fd in (out_w, err_w, null):
        os.close(fd)
    close_all(tasks)
    theirs.close()
    try:
        if spec.cgroup and not tasks:
            join_cgroup(spec.cgroup, pid, ours)
        try:
            ours.send(protocol.JOINED)
        except OSError:
            pass  # init already failed and closed its end: its report is waiting to be read
        wait_for_exec(ours)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        ours.close()
    return pid, {out_r: b"stdout", err_r: b"stderr"}


def join_cgroup(cgroup: str, pid: int, sync: socket.socket) -> None:
    """Moves init into the container's cgroups while it sets up; if it failed (and exited) first,
    its own report says why better than the cgroup write that then fails."""
    try:
        new_manager().add_process(cgroup, pid)
    except Exception:
        if wait_readable([sync], 0.5):
            wait_for_exec(sync)
        raise


def enter_pid_namespace(where: str, syscalls: Syscalls) -> None:
    """Our next child is PID 1 of a new namespace, or joins the pod's; we stay where we are."""
    if where == HOST:
        return
    if not where:
        syscalls.unshare(k.CLONE_NEWPID)
        return
    fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, k.CLONE_NEWPID)
    finally:
        os.close(fd)


def wait_for_exec(sync: socket.socket) -> None:
    """READY then EOF means execve succeeded (init's end is close-on-exec); a message is a failure."""
    for expected in (protocol.READY, b""):
        data = sync.recv(protocol.MAX_MESSAGE)
        if data == expected:
            continue
        if data.startswith(b"{"):
            failure = json.loads(data)
            raise RuntimeError(f"container init failed at {failure['phase']}: {failure['error']}")
        raise RuntimeError("container init exited during set-up" if not data else f"unexpected {data!r}")
