"""fork_pid1 with the kernel's namespaces (runtime/process/pidnsfork.py): the child is PID 1 of a
new namespace the caller holds, and the caller's later children are where they always were. Each
check runs in a child of the test, so the test process's own namespaces are never touched."""
from __future__ import annotations

import contextlib
import json
import os
import signal

from runtime.linux import constants as k
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child
from runtime.process.pidnsfork import HOST, NEW, fork_in, fork_pid1


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _pid1_and_after() -> dict[str, object]:
    syscalls = LinuxSyscalls()
    r, w = os.pipe()

    def fork() -> int:
        pid = os.fork()
        if pid == 0:
            os.write(w, f"{os.getpid()} {os.readlink('/proc/self/ns/pid')}".encode())
            os._exit(0)
        return pid

    pid, namespace = fork_pid1(fork, syscalls, _kill)
    os.close(w)
    seen_pid, seen_ns = os.read(r, 4096).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    later = os.fork()  # forked where this process lives, not in the (now empty) namespace
    if later == 0:
        os._exit(0 if os.readlink("/proc/self/ns/pid") == os.readlink(f"/proc/{os.getppid()}/ns/pid") else 1)
    _, status = os.waitpid(later, 0)
    again, second = fork_pid1(_exit_at_once, syscalls, _kill)  # unshare works again
    os.waitpid(again, 0)
    result = {"pid1": seen_pid, "held": os.readlink(f"/proc/self/fd/{namespace}"), "child_ns": seen_ns,
              "own": os.readlink("/proc/self/ns/pid"),
              "for_children": os.readlink("/proc/self/ns/pid_for_children"),
              "later_in_own": os.waitstatus_to_exitcode(status) == 0,
              "second": os.readlink(f"/proc/self/fd/{second}")}
    os.close(namespace)
    os.close(second)
    return result


def _exit_at_once() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


def test_the_child_is_pid_1_of_the_held_namespace_and_later_children_are_not() -> None:
    seen = run_in_child(_pid1_and_after)
    assert seen["pid1"] == "1"
    assert seen["held"] == seen["child_ns"] != seen["own"]
    assert seen["for_children"] == seen["own"]
    assert seen["later_in_own"] is True
    assert seen["second"] not in (seen["held"], seen["own"])


# --- fork_in: a container's init, forked by the monitor into its namespace ------------------
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
