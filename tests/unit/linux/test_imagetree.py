"""Image volumes at the kernel seam: the overlay init mounts, the sub path resolved inside the image
(never outside it, whatever its symlinks say) and put in place of the whole image. No root: the
mounts are recorded by FakeSyscalls, and openat2 walks real directories standing in for the image."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime.errors import Internal, InvalidArgument
from runtime.linux import constants as k
from runtime.linux.imagetree import IMAGE_TREE_FLAGS, ImageTree, mount_image_tree, open_image_dir, overlay_options
from runtime.linux.mounts import MountPlan, apply_mount_plan, image_tree
from runtime.linux.rootfs import closing_fd
from runtime.linux.testing import FakeSyscalls

TREE = ImageTree(("/snap/2/fs", "/snap/1/fs"), "/run/c1/image-empty")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """What the overlay of a hostile image would show: links that try to leave it."""
    root = tmp_path / "image"
    for d in ("etc/ssl", "usr/share/data", "bin"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "marker").write_text("the image's /etc")
    (root / "bin" / "busybox").write_text("")
    links = {"up": "../../../..", "root": "/", "hostetc": "/etc", "data": "/usr/share/data",
             "sh": "/bin/busybox", "loop1": "loop2", "loop2": "loop1", "dangling": "/no/such/dir",
             "magic": "/proc/self/root", "etc/ssl/certs": "../../../../../etc"}
    for name, target in links.items():
        os.symlink(target, root / name)
    return root


def open_dir(root: Path, sub_path: str) -> str:
    with closing_fd(os.open(root, os.O_PATH | os.O_DIRECTORY)) as tree:
        with closing_fd(open_image_dir(FakeSyscalls(), tree, sub_path, "image volume at /vol")) as fd:
            return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("sub_path, inside", [
    ("", ""), ("etc", "etc"), ("etc/ssl", "etc/ssl"),
    ("data", "usr/share/data"),  # an absolute link, as the image itself sees it
    ("hostetc", "etc"),  # the image's /etc, not the host's
    ("up", ""), ("root", ""),  # ".." and "/" stop at the image's root
    ("etc/ssl/certs", "etc"),
])
def test_the_sub_path_resolves_inside_the_image(image: Path, sub_path: str, inside: str) -> None:
    assert open_dir(image, sub_path) == str(image / inside).rstrip("/")


@pytest.mark.parametrize("sub_path, message", [
    ("nope", "sub path 'nope': no such file or directory in the image"),
    ("dangling", "no such file or directory in the image"),
    ("magic", "no such file or directory in the image"),  # /proc of the image, which has none
    ("etc/marker", "is not a directory in the image; only a directory can be mounted"),
    ("sh", "'sh' is not a directory"),
    ("etc/marker/x", "is not a directory"),
    ("loop1", "'loop1': Too many levels of symbolic links"),
])
def test_what_is_not_a_directory_of_the_image_is_refused(image: Path, sub_path: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        open_dir(image, sub_path)


def test_a_one_layer_image_is_an_overlay_too_thanks_to_the_empty_layer() -> None:
    assert overlay_options(TREE) == "lowerdir=/snap/2/fs:/snap/1/fs:/run/c1/image-empty"
    assert overlay_options(ImageTree(("/s/1",), "/e")) == "lowerdir=/s/1:/e"


def apply(root: Path, tree: ImageTree, syscalls: FakeSyscalls, **kw) -> None:
    apply_mount_plan(syscalls, MountPlan(mounts=(image_tree(tree, "/vol", **kw),), devices=(), symlinks=(),
                                         masked=(), readonly=()), str(root))


def test_the_whole_image_is_one_read_only_overlay_on_the_target(tmp_path: Path) -> None:
    syscalls = FakeSyscalls()
    apply(tmp_path, TREE, syscalls)
    assert syscalls.calls_to("mount", resolved=True) == [
        ("overlay", str(tmp_path / "vol"), "overlay", IMAGE_TREE_FLAGS, overlay_options(TREE))]
    assert IMAGE_TREE_FLAGS & (k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV) == IMAGE_TREE_FLAGS
    assert not IMAGE_TREE_FLAGS & k.MS_NOEXEC
    assert [name for name, _ in syscalls.calls] == ["openat2"] * len(syscalls.calls_to("openat2")) + ["mount"]


def test_a_sub_path_replaces_the_image_on_the_target(tmp_path: Path) -> None:
    (tmp_path / "vol" / "usr" / "share").mkdir(parents=True)  # what the fake overlay "shows" at /vol
    syscalls = FakeSyscalls()
    apply(tmp_path, ImageTree(TREE.layers, TREE.empty, "usr/share"), syscalls, propagation=k.MS_PRIVATE)
    acts = [(name, args) for name, args in syscalls.resolved_calls if name != "openat2"]
    vol = str(tmp_path / "vol")
    assert [name for name, _ in acts] == ["mount", "open_tree", "umount2", "move_mount", "mount"]
    _, (_, path, flags) = acts[1]
    assert (path, flags) == ("", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH)
    assert acts[2][1] == (vol, k.MNT_DETACH)  # the whole image goes: nothing of it stays underneath
    _, (_, from_path, _, to_path, flags) = acts[3]  # the copy, by fd, onto the target, by fd
    assert (from_path, to_path, flags) == ("", "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)
    assert acts[4][1] == (None, vol, None, k.MS_PRIVATE, None)  # the CRI mount's propagation, on the copy


def test_a_missing_sub_path_fails_before_anything_replaces_the_image(tmp_path: Path) -> None:
    (tmp_path / "vol").mkdir()
    syscalls = FakeSyscalls()
    with pytest.raises(InvalidArgument, match="image volume at /vol: sub path 'etc': no such file"):
        apply(tmp_path, ImageTree(TREE.layers, TREE.empty, "etc"), syscalls)
    assert not syscalls.calls_to("open_tree") and not syscalls.calls_to("move_mount")


@pytest.mark.parametrize("call", ["mount", "open_tree", "move_mount"])
def test_kernel_failures_are_internal_and_say_where(tmp_path: Path, call: str) -> None:
    (tmp_path / "vol" / "etc").mkdir(parents=True)
    syscalls = FakeSyscalls()
    syscalls.fail(call, errno.EINVAL)
    with pytest.raises(Internal, match="image volume at /vol"):
        with closing_fd(os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)) as root:
            with closing_fd(os.open(tmp_path / "vol", os.O_PATH | os.O_DIRECTORY)) as target:
                mount_image_tree(syscalls, root, target, ImageTree(TREE.layers, TREE.empty, "etc"),
                                 "image volume at /vol")


def test_in_a_user_namespace_the_layers_are_idmapped_attached_for_overlayfs_then_detached(tmp_path: Path) -> None:
    """overlayfs before Linux 6.15 takes no detached tree as a layer: each id-mapped layer is
    attached on the staging dir while the overlay is mounted, and detached right after."""
    layers = [tmp_path / name for name in ("l2", "l1", "empty")]
    for d in layers:
        d.mkdir()
    (tmp_path / "root").mkdir()
    userns = tmp_path / "userns"
    userns.write_text("")
    staging = tmp_path / "layers"
    syscalls = FakeSyscalls()
    tree = ImageTree((str(layers[0]), str(layers[1])), str(layers[2]))
    apply_mount_plan(syscalls, MountPlan(mounts=(image_tree(tree, "/vol", idmap=True),), devices=(), symlinks=(),
                                         masked=(), readonly=(), idmap_userns=str(userns),
                                         layer_staging=str(staging)), str(tmp_path / "root"))
    attached = [str(staging / str(i)) for i in range(3)]
    assert [args[3] for args in syscalls.calls_to("move_mount")] == attached
    (overlay,) = syscalls.calls_to("mount", resolved=True)
    assert overlay[4] == "lowerdir=" + ":".join(attached)
    names = [name for name, _ in syscalls.calls if name in ("move_mount", "mount", "umount2")]
    assert names == ["move_mount"] * 3 + ["mount"] + ["umount2"] * 3
    assert sorted(args[0] for args in syscalls.calls_to("umount2")) == attached


def test_idmapped_layers_without_a_staging_dir_are_an_internal_error(tmp_path: Path) -> None:
    with pytest.raises(Internal, match="need a staging directory"):
        with closing_fd(os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)) as root:
            mount_image_tree(FakeSyscalls(), root, root, TREE, "image volume at /vol", userns_fd=5)
