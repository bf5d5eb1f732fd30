"""The pod's infra process, only for pods that share one PID namespace: it is PID 1 there, reaps
the pod's orphans, and keeps the namespace alive between containers. The pod monitor forks it
straight into a new PID namespace (runtime/process/pausestart.py), holds the namespace by a
descriptor from that fork on (never by a pid that could be reused), and, as its parent, knows at
once when the pause dies.

It runs in a cgroup of its own under the pod's, joined first thing (runtime/cgroups/selfjoin.py;
on cgroup v2 the monitor moves it). Every container of the pod can see it as PID 1 (and, with
CAP_SYS_PTRACE, reach /proc/1/root), so before it waits it gives up everything a container must
not get through it (confine): it joins the pod's namespaces, pivots into a read-only root (the
sandbox image's, or an empty tmpfs), closes every fd, drops all capabilities including the
bounding set, sets no_new_privs and runs as 65535:65535 (the pause image's user; in a pod with a
user namespace, which it enters once its root is in place, that user of the pod's:
runtime/sandbox/userns.py pause_id). It tells the monitor on its sync socket: READY (with its start
time), or what failed. With the sandbox image it then execs the image's pause binary, which costs far less
memory than this forked interpreter (the socket is close-on-exec: its EOF says the exec
happened); without, this process is the pause.
"""
from __future__ import annotations

import os
import signal
import socket
from typing import NoReturn

from runtime.cgroups.selfjoin import join_self
from runtime.linux import constants as k
from runtime.linux.capabilities import apply_capabilities, capability_state
from runtime.linux.syscalls import Syscalls
from runtime.sandbox.userns import PAUSE_ID

_JOIN = {"net": k.CLONE_NEWNET, "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS}


def confine(root: str, lowerdirs: tuple[str, ...], argv: tuple[str, ...], namespaces: dict[str, int],
            tasks: list[int], sync: socket.socket, ready: bytes, syscalls: Syscalls, user: int = PAUSE_ID) -> NoReturn:
    """``ready``: what tells the monitor that the set-up is done (protocol.pause_ready)."""
    try:
        join_self(tasks)
        # The user namespace after the mounts: its root could not mount in our mount namespace.
        for kind, fd in namespaces.items():
            if kind != "user":
                syscalls.setns(fd, _JOIN[kind])
                os.close(fd)
        syscalls.unshare(k.CLONE_NEWNS)
        syscalls.mount(None, "/", None, k.MS_REC | k.MS_SLAVE)
        mount_root(root, lowerdirs, syscalls)
        old_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.chdir(root)
        syscalls.pivot_root(".", ".")
        os.fchdir(old_root)
        syscalls.umount2(".", k.MNT_DETACH)
        os.close(old_root)
        os.chdir("/")
        exec_flag = 0 if argv else k.MS_NOEXEC
        syscalls.mount(None, "/", None, k.MS_REMOUNT | k.MS_BIND | k.MS_RDONLY | k.MS_NOSUID |
                       k.MS_NODEV | exec_flag)
        if "user" in namespaces:
            syscalls.setns(namespaces["user"], k.CLONE_NEWUSER)
            os.close(namespaces["user"])

        def become_pause_user() -> None:
            syscalls.setgroups(())
            os.setresgid(user, user, user)
            os.setresuid(user, user, user)

        apply_capabilities(syscalls, capability_state(frozenset(), user), become_pause_user)
        syscalls.prctl(k.PR_SET_NO_NEW_PRIVS, 1)
        if argv:
            # The sync socket is close-on-exec: the parent learns of success from READY, of a
            # failed exec from the message after it.
            sync.send(ready)
            syscalls.close_range(0, sync.fileno() - 1)
            syscalls.close_range(sync.fileno() + 1)
            os.execve(argv[0], list(argv), {"PATH": "/"})
        sync.send(ready)
        syscalls.close_range(0)
    except BaseException as e:  # noqa: BLE001 - the monitor reports it
        report_failure(sync, e)
    pause()


def report_failure(sync: socket.socket, e: BaseException) -> NoReturn:
    """Tells the monitor what failed (the text of the agent's error) and exits."""
    try:
        sync.send(f"{type(e).__name__}: {e}".encode()[:4096])
    finally:
        os._exit(1)


def mount_root(root: str, lowerdirs: tuple[str, ...], syscalls: Syscalls) -> None:
    """The sandbox image read-only (overlay needs two layers without an upper; one is a bind),
    or an empty tmpfs."""
    if len(lowerdirs) > 1:
        syscalls.mount("overlay", root, "overlay", k.MS_RDONLY, f"lowerdir={':'.join(lowerdirs)}")
    elif lowerdirs:
        syscalls.mount(lowerdirs[0], root, None, k.MS_BIND)
    else:
        syscalls.mount("pause", root, "tmpfs", k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC, "size=4k,mode=555")


def pause() -> NoReturn:
    def stop(signum: int, frame: object) -> None:
        os._exit(0)

    def reap(signum: int, frame: object) -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    # PID 1 gets no default signal actions: without handlers, SIGTERM would be ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGCHLD, reap)
    while True:
        signal.pause()
