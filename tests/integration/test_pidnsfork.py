"""fork_in (runtime/process/pidnsfork.py) on the real kernel, run from a forked child so that the
test runner's own pid_for_children never changes: the child is PID 1 of a new namespace, or a
member of a joined one, and the forking process's next child is back in its own namespace."""
from __future__ import annotations

import json
import os
import signal

from runtime.linux import constants as k
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child
from runtime.process.pidnsfork import HOST, NEW, fork_in


def _child_says(where: str | int) -> dict[str, object]:
    """Forks with fork_in(where): what the child saw (its pid, its namespace), and the parent's
    pid_for_children after the fork."""
    r, w = os.pipe()
    pid = fork_in(where, os.fork, LinuxSyscalls())
    if pid == 0:
        os.write(w, json.dumps({"pid": os.getpid(), "ns": os.readlink("/proc/self/ns/pid")}).encode())
        os._exit(0)
    os.close(w)
    seen = json.loads(os.read(r, 4096))
    os.close(r)
    os.waitpid(pid, 0)
    return {**seen, "after": os.readlink("/proc/self/ns/pid_for_children")}


def test_a_new_namespace_makes_the_child_pid_1_and_leaves_ours() -> None:
    def child() -> dict[str, object]:
        return {**_child_says(NEW), "own": os.readlink("/proc/self/ns/pid")}

    seen = run_in_child(child)
    assert seen["pid"] == 1 and seen["ns"] != seen["own"]
    assert seen["after"] == seen["own"]


def test_a_joined_namespace_takes_the_child_and_ours_comes_back() -> None:
    def child() -> dict[str, object]:
        syscalls = LinuxSyscalls()
        own = os.open("/proc/self/ns/pid", os.O_RDONLY)
        syscalls.unshare(k.CLONE_NEWPID)
        holder = os.fork()  # PID 1 of a namespace of its own, which fork_in joins by descriptor
        if holder == 0:
            while True:
                signal.pause()
        syscalls.setns(own, k.CLONE_NEWPID)
        target = os.open(f"/proc/{holder}/ns/pid", os.O_RDONLY)
        try:
            return {**_child_says(target), "own": os.readlink("/proc/self/ns/pid"),
                    "target": os.readlink(f"/proc/{holder}/ns/pid")}
        finally:
            os.close(target)
            os.kill(holder, signal.SIGKILL)
            os.waitpid(holder, 0)

    seen = run_in_child(child)
    assert seen["ns"] == seen["target"] != seen["own"] and seen["pid"] != 1
    assert seen["after"] == seen["own"]


def test_the_host_s_namespace_is_ours() -> None:
    seen = run_in_child(lambda: {**_child_says(HOST), "own": os.readlink("/proc/self/ns/pid")})
    assert seen["ns"] == seen["own"] == seen["after"]
