"""The probe for mount_setattr: a no-op call, and any refusal means "do not advertise"."""
from __future__ import annotations

import errno

import pytest

from runtime.linux.mountapi import has_mount_setattr
from runtime.linux.testing import FakeSyscalls


def test_present_when_a_no_op_call_succeeds() -> None:
    fake = FakeSyscalls()
    assert has_mount_setattr(fake) is True
    assert fake.calls_to("mount_setattr") == [("/", 0, 0, 0, False)]  # sets and clears nothing


@pytest.mark.parametrize("error", [errno.ENOSYS, errno.EPERM])
def test_absent_when_the_kernel_or_a_filter_refuses(error: int) -> None:
    fake = FakeSyscalls()
    fake.fail("mount_setattr", error)
    assert has_mount_setattr(fake) is False
