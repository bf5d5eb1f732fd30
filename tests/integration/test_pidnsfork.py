"""fork_pid1 with the kernel's namespaces (runtime/process/pidnsfork.py): the child is PID 1 of a
new namespace the caller holds, and the caller's later children are where they always were. Each
check runs in a child of the test, so the test process's own namespaces are never touched."""
from __future__ import annotations

import contextlib
import os
import signal

from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child
from runtime.process.pidnsfork import fork_pid1


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
