"""The pod's infra process, only for pods that share one PID namespace: it is PID 1 there, reaps
the pod's orphans, and keeps the namespace alive between containers. A child of the pod monitor,
which holds the namespace by a descriptor (never by a pid that could be reused) and knows at once
when the pause dies.

It runs in a cgroup of its own under the pod's, joined first thing (runtime/cgroups/selfjoin.py).
Every container of the pod can see it as PID 1 (and, with CAP_SYS_PTRACE, reach /proc/1/root), so
before it waits it gives up everything a container must not get through it: it joins the pod's
namespaces, pivots into a read-only root (the sandbox image's, or an empty tmpfs), closes every
fd, drops all capabilities including the bounding set, sets no_new_privs and runs as 65535:65535
(the pause image's user; in a pod with a user namespace, which it enters once its root is in
place, that user of the pod's: runtime/sandbox/userns.py pause_id). With the sandbox image it then
execs the image's pause binary, which costs far less memory than this forked interpreter;
without, this process is the pause.
"""
from __future__ import annotations

import os
import signal
import socket
from typing import Any, NoReturn

from runtime.cgroups.manager import new_manager
from runtime.cgroups.selfjoin import close_all, join_self, open_tasks_files
from runtime.linux import constants as k
from runtime.linux.capabilities import apply_capabilities, capability_state
from runtime.linux.proc import start_time
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.process import protocol
from runtime.sandbox.userns import PAUSE_ID

_JOIN = {"net": k.CLONE_NEWNET, "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS}


def run_pause(raw: dict[str, Any], report: socket.socket) -> int:
    """In a fresh child of the pod monitor: forks PID 1 of a new PID namespace and reports its pid,
    its start time and (attached) the namespace, which the monitor keeps to start containers in.

    raw: {"id": sandbox id, "root": an empty directory to pivot into,
          "namespaces": {"user"|"net"|"ipc"|"uts": pinned namespace file},
          "cgroup": its cgroup, made already (optional),
          "lowerdirs": the sandbox image's snapshots (optional), "argv": its pause command,
          "user": the uid and gid to run as (optional; 65535)}"""
    syscalls = LinuxSyscalls()
    cgroup = raw.get("cgroup", "")
    try:
        namespaces = {kind: os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                      for kind, path in raw.get("namespaces", {}).items()}
        tasks = open_tasks_files(new_manager(), cgroup) if cgroup else []
        syscalls.unshare(k.CLONE_NEWPID)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            report.close()
            ours.close()
            confine(raw["root"], tuple(raw.get("lowerdirs", ())), tuple(raw.get("argv", ())),
                    namespaces, tasks, theirs, syscalls, int(raw.get("user", PAUSE_ID)))
        theirs.close()
        close_all(tasks)
        if cgroup and not tasks:  # cgroup v2: no file to join by; move it from here
            try:
                new_manager().add_process(cgroup, pid)
            except BaseException:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise
        answer = ours.recv(protocol.MAX_MESSAGE)
        if answer == protocol.READY and raw.get("argv"):
            answer = ours.recv(protocol.MAX_MESSAGE)  # EOF: the pause binary was exec'd
            failed = answer != b""
        else:
            failed = answer != protocol.READY
        ours.close()
        if failed:
            os.waitpid(pid, 0)
            raise RuntimeError(f"pause set-up failed: {answer.decode(errors='replace') or 'no answer'}")
        # Only now that it has its PID 1 can the namespace be opened (ENOENT before).
        pid_namespace = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    except Exception as e:  # noqa: BLE001
        protocol.send(report, protocol.error_message(e))
        return 1
    protocol.send(report, {"pid": pid, "start_time": start_time(pid)}, (pid_namespace,))
    return 0


def confine(root: str, lowerdirs: tuple[str, ...], argv: tuple[str, ...], namespaces: dict[str, int],
            tasks: list[int], sync: socket.socket, syscalls: Syscalls, user: int = PAUSE_ID) -> NoReturn:
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
            sync.send(protocol.READY)
            syscalls.close_range(0, sync.fileno() - 1)
            syscalls.close_range(sync.fileno() + 1)
            os.execve(argv[0], list(argv), {"PATH": "/"})
        sync.send(protocol.READY)
        syscalls.close_range(0)
    except BaseException as e:  # noqa: BLE001 - the parent reports it
        try:
            sync.send(f"{type(e).__name__}: {e}".encode()[:4096])
        finally:
            os._exit(1)
    pause()


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
