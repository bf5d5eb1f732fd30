"""fork_pid1 and fork_in (runtime/process/pidnsfork.py), with the system calls faked: the order of
unshare or setns, fork and the restore of pid_for_children, and that the restore happens whatever
failed. (The real namespaces: tests/integration/test_pidnsfork.py.)"""
from __future__ import annotations

import errno
import os

import pytest

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.testing import FakeSyscalls
from runtime.process import pidnsfork
from runtime.process.pidnsfork import HOST, NEW, fork_in, fork_pid1

OWN = os.readlink("/proc/self/ns/pid")


class Recording(FakeSyscalls):
    """Also records what each setns descriptor names at the time of the call."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def unshare(self, flags: int) -> None:
        self.log.append(f"unshare {flags:#x}")
        super().unshare(flags)

    def setns(self, fd: int, nstype: int) -> None:
        self.log.append(f"setns {os.readlink(f'/proc/self/fd/{fd}')} {nstype:#x}")
        super().setns(fd, nstype)


def test_the_child_is_forked_after_the_unshare_and_pid_for_children_is_restored_after() -> None:
    log: list[str] = []

    def fork() -> int:
        log.append("fork")
        return 4242

    pid, namespace = fork_pid1(fork, Recording(log), lambda pid: log.append(f"abandon {pid}"))
    try:
        assert pid == 4242
        assert os.readlink(f"/proc/self/fd/{namespace}") == OWN  # the fake unshare made none
        assert os.get_inheritable(namespace) is False
    finally:
        os.close(namespace)
    assert log == [f"unshare {k.CLONE_NEWPID:#x}", "fork", f"setns {OWN} {k.CLONE_NEWPID:#x}"]


def test_a_failed_fork_still_restores_pid_for_children() -> None:
    log: list[str] = []

    def fork() -> int:
        raise OSError(errno.EAGAIN, "fork: Resource temporarily unavailable")

    with pytest.raises(OSError, match="fork"):
        fork_pid1(fork, Recording(log), lambda pid: log.append(f"abandon {pid}"))
    assert log == [f"unshare {k.CLONE_NEWPID:#x}", f"setns {OWN} {k.CLONE_NEWPID:#x}"]


def test_a_namespace_that_cannot_be_opened_abandons_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    real_open = os.open

    def open_(path: str, flags: int) -> int:
        if path.endswith("pid_for_children"):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags)

    monkeypatch.setattr(pidnsfork.os, "open", open_)
    with pytest.raises(OSError, match="Too many open files"):
        fork_pid1(lambda: 4242, Recording(log), lambda pid: log.append(f"abandon {pid}"))
    assert log == [f"unshare {k.CLONE_NEWPID:#x}", "abandon 4242", f"setns {OWN} {k.CLONE_NEWPID:#x}"]


def test_a_failed_unshare_forks_nothing() -> None:
    log: list[str] = []
    syscalls = Recording(log)
    syscalls.fail("unshare", errno.EPERM)
    with pytest.raises(OSError, match="unshare"):
        fork_pid1(lambda: log.append("fork") or 1, syscalls, lambda pid: log.append(f"abandon {pid}"))
    assert log == [f"unshare {k.CLONE_NEWPID:#x}"]


# --- fork_in: a container's init, into a new, joined or the host's namespace ---------------
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
