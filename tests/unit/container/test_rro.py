"""Recursive read-only mounts: the CRI's rules, each refusal naming the container and the mount."""
from __future__ import annotations

from dataclasses import replace

import pytest

from runtime.container.model import Mount
from runtime.container.rro import check_recursive_readonly
from runtime.container.spec import validate_mount
from runtime.errors import InvalidArgument
from runtime.process.initspec import BindMount

RRO = Mount("/mnt", "/host/tree", readonly=True, recursive_read_only=True)


@pytest.mark.parametrize("mount", [
    RRO,
    Mount("/mnt", "/host/tree"),  # neither: nothing to check
    Mount("/mnt", "/host/tree", readonly=True),  # read-only at the top only
    Mount("/mnt", "/host/tree", propagation="rshared"),
])
def test_accepted(mount: Mount) -> None:
    check_recursive_readonly(mount, "container 'app': mount at /mnt", supported=True)


@pytest.mark.parametrize("mount, supported, message", [
    (replace(RRO, readonly=False), True, "recursive_read_only needs readonly set too"),
    (replace(RRO, propagation="rslave"), True, "needs private propagation, not rslave"),  # HOST_TO_CONTAINER
    (replace(RRO, propagation="rshared"), True, "needs private propagation, not rshared"),  # BIDIRECTIONAL
    (RRO, False, r"need mount_setattr \(Linux 5.12\+\)"),
])
def test_refused(mount: Mount, supported: bool, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        check_recursive_readonly(mount, "container 'app': mount at /mnt", supported)
    assert str(refused.value).startswith("container 'app': mount at /mnt: ")


def test_a_kernel_without_mount_setattr_still_takes_other_mounts() -> None:
    assert validate_mount(Mount("/mnt", "/host/tree", readonly=True), "app", False) == BindMount(
        "/host/tree", "/mnt", readonly=True)


def test_validate_mount_passes_the_container_and_mount_on() -> None:
    with pytest.raises(InvalidArgument, match=r"^container 'web': mount at /mnt: recursive_read_only needs"):
        validate_mount(replace(RRO, readonly=False), "web", True)
    assert validate_mount(RRO, "web", True) == BindMount("/host/tree", "/mnt", readonly=True, recursive_readonly=True)
