"""fork_in (runtime/process/pidnsfork.py): the child lands in the namespace asked for, and the
parent points its pid_for_children back at its own namespace afterwards, whatever happened."""
from __future__ import annotations

import os

import pytest

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.testing import FakeSyscalls
from runtime.process.pidnsfork import HOST, NEW, fork_in

OWN = os.readlink("/proc/self/ns/pid")


def pid_namespace_calls(syscalls: FakeSyscalls) -> list[tuple[str, object]]:
    """unshare(flags) and setns(target) in order; a setns target as the namespace its fd names."""
    found: list[tuple[str, object]] = []
    for name, args in syscalls.calls:
        if name == "unshare":
            found.append(("unshare", args[0]))
        elif name == "setns":
            fd, nstype = args
            assert nstype == k.CLONE_NEWPID
            found.append(("setns", os.readlink(f"/proc/self/fd/{fd}") if isinstance(fd, int) and fd > 2 else fd))
    return found


class Forks:
    """A stand-in for fork(): records the calls made before it, returns ``pid`` or raises."""

    def __init__(self, syscalls: FakeSyscalls, pid: int = 4321, error: Exception | None = None) -> None:
        self.syscalls, self.pid, self.error = syscalls, pid, error
        self.seen: list[tuple[str, object]] = []

    def __call__(self) -> int:
        self.seen = pid_namespace_calls(self.syscalls)
        if self.error is not None:
            raise self.error
        return self.pid


def test_a_new_namespace_is_made_for_the_child_and_ours_restored_after() -> None:
    syscalls = FakeSyscalls()
    fork = Forks(syscalls)
    assert fork_in(NEW, fork, syscalls) == 4321
    assert fork.seen == [("unshare", k.CLONE_NEWPID)]
    assert [name for name, _ in syscalls.calls] == ["unshare", "setns"]


def test_the_restore_points_at_our_own_namespace() -> None:
    syscalls = FakeSyscalls()
    restored: list[str] = []
    original = syscalls.setns

    def setns(fd: int, nstype: int) -> None:
        restored.append(os.readlink(f"/proc/self/fd/{fd}"))
        original(fd, nstype)

    syscalls.setns = setns  # type: ignore[method-assign]
    fork_in(NEW, Forks(syscalls), syscalls)
    assert restored == [OWN]


def test_a_given_namespace_is_joined_for_the_child() -> None:
    syscalls = FakeSyscalls()
    target = os.open("/proc/self/ns/pid", os.O_RDONLY)  # any namespace descriptor: the fake only records it
    try:
        fork = Forks(syscalls)
        fork_in(target, fork, syscalls)
        assert syscalls.calls_to("setns")[0] == (target, k.CLONE_NEWPID)
        assert len(syscalls.calls_to("setns")) == 2 and fork.seen == [("setns", OWN)]
    finally:
        os.close(target)


def test_the_host_s_namespace_is_a_plain_fork() -> None:
    syscalls = FakeSyscalls()
    assert fork_in(HOST, Forks(syscalls, pid=77), syscalls) == 77
    assert syscalls.calls == []


def test_a_failed_fork_still_restores_ours() -> None:
    syscalls = FakeSyscalls()
    with pytest.raises(OSError, match="no memory"):
        fork_in(NEW, Forks(syscalls, error=OSError(12, "no memory")), syscalls)
    assert [name for name, _ in syscalls.calls] == ["unshare", "setns"]


def test_a_failed_unshare_forks_nothing_and_restores_ours() -> None:
    syscalls = FakeSyscalls()
    syscalls.fail("unshare", 1)
    fork = Forks(syscalls)
    with pytest.raises(OSError):
        fork_in(NEW, fork, syscalls)
    assert fork.seen == [] and [name for name, _ in syscalls.calls] == ["unshare", "setns"]


def test_the_child_does_not_restore() -> None:
    """In the child (fork returned 0) pid_for_children is already its own namespace's."""
    syscalls = FakeSyscalls()
    assert fork_in(NEW, Forks(syscalls, pid=0), syscalls) == 0
    assert [name for name, _ in syscalls.calls] == ["unshare"]


def test_an_unknown_namespace_is_refused_before_anything() -> None:
    syscalls = FakeSyscalls()
    with pytest.raises(Internal, match="unknown PID namespace"):
        fork_in("pod", Forks(syscalls), syscalls)
    assert syscalls.calls == []
