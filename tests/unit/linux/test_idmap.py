"""Id-mapped trees through the syscall seam: the calls made, and a filesystem that refuses."""
from __future__ import annotations

import errno

import pytest

from runtime.errors import FailedPrecondition
from runtime.linux import constants as k
from runtime.linux.idmap import IdmapSupport, idmapped_tree, tree_path
from runtime.linux.testing import FakeSyscalls


@pytest.mark.parametrize("recursive", [False, True])
def test_clone_then_idmap(recursive) -> None:
    sc = FakeSyscalls()
    tree = idmapped_tree(sc, "/var/lib/pycrid/snap/1", 77, recursive)
    flags = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | (k.AT_RECURSIVE if recursive else 0)
    assert sc.calls == [("open_tree", ("/var/lib/pycrid/snap/1", flags)),
                        ("mount_setattr_idmap", (tree, 77, recursive))]
    assert tree_path(tree) == f"/proc/self/fd/{tree}"


def test_a_filesystem_that_cannot_be_idmapped_is_a_failed_precondition() -> None:
    sc = FakeSyscalls()
    sc.fail("mount_setattr_idmap", errno.EINVAL)
    with pytest.raises(FailedPrecondition, match="id-mapping /vol: its filesystem does not support id-mapped"):
        idmapped_tree(sc, "/vol", 77, recursive=True)
    sc.fail("open_tree", errno.ENOSYS)
    with pytest.raises(FailedPrecondition, match="id-mapping /old-kernel: .*Function not implemented"):
        idmapped_tree(sc, "/old-kernel", 77, recursive=False)


def test_support() -> None:
    assert IdmapSupport().supported
    assert not IdmapSupport("id-mapping /x: no").supported
