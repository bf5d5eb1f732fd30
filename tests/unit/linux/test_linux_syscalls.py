"""LinuxSyscalls' own failures: errno and what was called, as OSError (no root needed: each
call fails before any permission check)."""
from __future__ import annotations

import errno

import pytest

from runtime.linux import constants as k
from runtime.linux.syscalls import LinuxSyscalls


def test_a_failed_setns_names_its_fd_and_type() -> None:
    with pytest.raises(OSError, match=r"^\[Errno 9\] setns\(fd -1, nstype=0x20000000\): Bad file descriptor$") as e:
        LinuxSyscalls().setns(-1, k.CLONE_NEWPID)
    assert e.value.errno == errno.EBADF


def test_a_failed_unshare_names_its_flags() -> None:
    with pytest.raises(OSError, match=r"^\[Errno 22\] unshare\(flags=0x1\): Invalid argument$") as e:
        LinuxSyscalls().unshare(0x1)  # no namespace flag
    assert e.value.errno == errno.EINVAL


def test_a_failed_prctl_names_its_option_and_first_arguments() -> None:
    with pytest.raises(OSError, match=r"^\[Errno 22\] prctl\(option=-1, 0, 0\): Invalid argument$") as e:
        LinuxSyscalls().prctl(-1)
    assert e.value.errno == errno.EINVAL


def test_prctl_returns_what_the_call_returned() -> None:
    assert LinuxSyscalls().prctl(k.PR_GET_NO_NEW_PRIVS) in (0, 1)
