"""fork_pid1 (runtime/process/pidnsfork.py), with the system calls faked: the order of unshare,
fork and the restore of pid_for_children, and that the restore happens whatever failed. (The real
namespaces: tests/integration/test_pidnsfork.py.)"""
from __future__ import annotations

import errno
import os

import pytest

from runtime.linux import constants as k
from runtime.linux.testing import FakeSyscalls
from runtime.process import pidnsfork
from runtime.process.pidnsfork import fork_pid1

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
