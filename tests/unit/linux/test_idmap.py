"""Id-mapped trees through the syscall seam: the calls made, and a filesystem that refuses."""
from __future__ import annotations

import contextlib
import errno

import pytest

from runtime.errors import FailedPrecondition
from runtime.linux import constants as k
from runtime.linux.idmap import IdmapSupport, attach_tree, idmapped_tree
from runtime.linux.testing import FakeSyscalls


@pytest.mark.parametrize("recursive", [False, True])
def test_clone_then_idmap(tmp_path, recursive) -> None:
    sc = FakeSyscalls()
    tree = idmapped_tree(sc, str(tmp_path), 77, recursive)
    flags = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH | (k.AT_RECURSIVE if recursive else 0)
    (opened,) = sc.calls_to("open_tree")
    assert opened[1:] == ("", flags)  # the source itself, opened O_PATH first (a path is resolved once)
    assert sc.calls_to("mount_setattr_idmap") == [(tree, 77, recursive)]
    assert [name for name, _ in sc.calls] == ["open_tree", "mount_setattr_idmap"]


def test_a_tree_is_attached_for_overlayfs_and_detached_when_the_overlay_holds_it(tmp_path) -> None:
    sc = FakeSyscalls()
    where = tmp_path / "layers" / "0"
    with contextlib.ExitStack() as unmounts:
        assert attach_tree(sc, 9, str(where), unmounts) == str(where)
        assert where.is_dir()
        assert sc.calls_to("move_mount") == [(9, "", k.AT_FDCWD, str(where), k.MOVE_MOUNT_F_EMPTY_PATH)]
        assert sc.calls_to("umount2") == []
    assert sc.calls_to("umount2") == [(str(where), k.MNT_DETACH)]


def test_a_filesystem_that_cannot_be_idmapped_is_a_failed_precondition(tmp_path) -> None:
    sc = FakeSyscalls()
    sc.fail("mount_setattr_idmap", errno.EINVAL)
    with pytest.raises(FailedPrecondition, match=f"id-mapping {tmp_path}: its filesystem does not support id-mapped"):
        idmapped_tree(sc, str(tmp_path), 77, recursive=True)
    sc.fail("open_tree", errno.ENOSYS)
    with pytest.raises(FailedPrecondition, match=f"id-mapping {tmp_path}: .*Function not implemented"):
        idmapped_tree(sc, str(tmp_path), 77, recursive=False)
    with pytest.raises(FailedPrecondition, match="id-mapping /no/such/volume: .*No such file"):
        idmapped_tree(FakeSyscalls(), "/no/such/volume", 77, recursive=False)


def test_support() -> None:
    assert IdmapSupport().supported
    assert not IdmapSupport("id-mapping /x: no").supported
