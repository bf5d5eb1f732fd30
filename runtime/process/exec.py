"""Exec into a running container: a child of the pod monitor joins the container's namespaces and
cgroup, takes its user, capabilities and seccomp filter, and execs the command with the agent's
pipes as stdio. It reports the command's exit code to the agent when the command ends.

The monitor opens the namespaces of the container's init before it forks us: it is that init's
parent, so the pid cannot have been reused by another process while it did. A pod's user
namespace is joined last, as init joined it: after it, we could not enter the others.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Any, NoReturn

from runtime.cgroups.manager import new_manager
from runtime.cgroups.selfjoin import close_all, join_self, open_tasks_files
from runtime.container.users import Identity
from runtime.errors import FailedPrecondition
from runtime.linux import constants as k
from runtime.linux import seccomp
from runtime.linux.newuserns import enter_user_namespace
from runtime.linux.seccomp_profile import ProfileKind
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.linux.terminal import open_terminal, take_terminal
from runtime.process import protocol
from runtime.process.children import bare_fork
from runtime.process.execspec import NAMESPACES, ExecSpec
from runtime.process.init import find_executable, process_env, secure
from runtime.store.codec import decode, field_types

# Resolved here, on import in the fork server (before it freezes its heap): every exec child, a
# fresh fork of a pod monitor, then decodes its spec without resolving the type hints again.
field_types(ExecSpec)
_FLAGS = {"ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS, "net": k.CLONE_NEWNET, "pid": k.CLONE_NEWPID,
          "cgroup": k.CLONE_NEWCGROUP, "mnt": k.CLONE_NEWNS}


def open_namespaces(pid: int, user: bool = False) -> dict[str, int]:
    fds: dict[str, int] = {}
    try:
        for name in (*NAMESPACES, *(("user",) if user else ())):
            fds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def run_exec(raw: dict[str, Any], namespaces: dict[str, int], report: socket.socket,
             stdio: tuple[int, int, int]) -> int:
    """In a fresh child of the monitor, its own session (so one killpg ends us and the command);
    `raw` is the ExecSpec as a dict (decoded here, not in the long-lived monitor)."""
    os.setsid()
    syscalls = LinuxSyscalls()
    try:
        spec = decode(ExecSpec, raw)
        # A PID namespace applies to children only: join it here, the command is our child.
        syscalls.setns(namespaces["pid"], k.CLONE_NEWPID)
        bpf = seccomp.profile_for(ProfileKind(spec.seccomp), spec.seccomp_profile or None,
                                  frozenset(spec.capabilities))
        seccomp.preload()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        tasks = open_tasks_files(new_manager(), spec.cgroup) if spec.cgroup else []
        pid = _fork_in_namespace()
        if pid == 0:
            ours.close()
            _child(spec, namespaces, bpf, stdio, theirs, syscalls, tasks)
        close_all(tasks)
        theirs.close()
        if spec.cgroup and not tasks:
            new_manager().add_process(spec.cgroup, pid)
        ours.send(protocol.JOINED)
        failure, fds, _, _ = socket.recv_fds(ours, protocol.MAX_MESSAGE, 1)
        if failure == protocol.TERMINAL and fds:
            # The command's terminal: the agent copies the client's stream to and from it. The
            # command leads a session of its own, so its pid goes along to be signalled too.
            protocol.send(report, {"terminal": True, "pid": pid}, (fds[0],))
            os.close(fds[0])
            failure = ours.recv(protocol.MAX_MESSAGE)
        ours.close()
    except Exception as e:  # noqa: BLE001 - the agent gets the reason as its CRI error
        protocol.send(report, protocol.error_message(e))
        return 1
    for fd in stdio:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    if failure:
        protocol.send(report, {"error": failure.decode(errors="replace")})
        return 1
    protocol.send(report, {"ok": {"exit_code": os.waitstatus_to_exitcode(status) % 256
                                  if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)}})
    return 0


def _fork_in_namespace() -> int:
    """Our child, in the PID namespace we joined; single-threaded, as the monitor that forked us,
    so no at-fork hooks run. The kernel refuses every fork into a namespace whose init has exited
    (ENOMEM), so the container is exiting under us."""
    try:
        return bare_fork()
    except OSError as e:
        if e.errno != errno.ENOMEM:
            raise
        raise FailedPrecondition("the container's PID namespace has no init any more: "
                                 "the container is exiting") from e


def _child(spec: ExecSpec, namespaces: dict[str, int], bpf: seccomp.Filter | None, stdio: tuple[int, ...],
           sync: socket.socket, syscalls: Syscalls, tasks: list[int]) -> NoReturn:
    try:
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        join_self(tasks)  # v1 (runtime/cgroups/selfjoin.py); on v2 the parent moves us
        if sync.recv(64) != protocol.JOINED:
            os._exit(1)
        for name in NAMESPACES:
            if name != "pid":
                syscalls.setns(namespaces[name], _FLAGS[name])
        if "user" in namespaces:
            enter_user_namespace(namespaces["user"], syscalls)
        if spec.tty:  # made in the container's own /dev/pts, now that we see its mounts
            master, slave = open_terminal()
            take_terminal(slave)
            socket.send_fds(sync, [protocol.TERMINAL], [master])
            os.close(master)
        os.chdir(spec.cwd)
        identity = Identity(spec.uid, spec.gid, spec.groups)
        env = process_env(spec.env, identity)
        secure(spec.capabilities, spec.ambient_capabilities, spec.no_new_privs, identity, bpf, syscalls)
        path = find_executable(spec.args[0], env)
        syscalls.close_range(3)  # the sync socket is close-on-exec: EOF tells the parent we exec'd
        os.execve(path, list(spec.args), dict(e.split("=", 1) for e in env))
    except BaseException as e:  # noqa: BLE001
        try:
            sync.send(f"{type(e).__name__}: {e}".encode()[:4096])
        finally:
            os._exit(127)
