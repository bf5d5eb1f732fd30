"""An image's filesystem, or a directory of it, mounted read-only on a target: image volumes (CRI
Mount.image, KEP-4639).

The layers become one read-only overlay on the target (opened inside the container's rootfs). For
a sub path, the directory is resolved inside that overlay by the kernel, as if the overlay were the
root (openat2 RESOLVE_IN_ROOT, runtime/linux/rootfs.py): the image's symlinks are followed as a
container of that image would see them, and an absolute link target or a ".." stops at the image's
root, so nothing outside the image is reachable whatever it holds. A detached copy of that directory
(open_tree) then replaces the overlay on the target: the container sees one mount, of the
directory only, with nothing of the whole image stacked underneath.

Every mount is made on the target, by fd, in the caller's mount namespace: no staging directory,
nothing on the host. In a pod with a user namespace the layers are id-mapped trees
(runtime/linux/idmap.py), as the rootfs' are: the image's root-owned files are the pod root's.
Those trees are attached on the container's staging directories until the overlay is made
(overlayfs before 6.15 takes no detached tree), in the container's own mount namespace.
"""
from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.errors import Internal, InvalidArgument
from runtime.linux import constants as k
from runtime.linux.idmap import idmapped_layers
from runtime.linux.rootfs import closing_fd, fd_path, open_in_root, reopen_in_root
from runtime.linux.syscalls import Syscalls

# Read-only, as the CRI defines image volumes; nosuid and nodev: an image's set-uid programs and
# device nodes take no effect (CRI-O mounts image volumes so too). Not noexec: tools shipped as an
# image are a main use, containerd never set it and the Kubernetes API no longer promises it.
IMAGE_TREE_FLAGS = k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV


@dataclass(frozen=True)
class ImageTree:
    layers: tuple[str, ...]  # snapshot directories, top layer first; at least one
    empty: str  # an empty directory: the overlay's bottom layer
    sub_path: str = ""  # relative, without "..": the directory to show ("" for the image's root)


def overlay_options(tree: ImageTree, layers: Sequence[str] | None = None) -> str:
    """overlayfs mounts without an upper layer only over two lower ones or more: an empty directory
    at the bottom makes a one-layer image such a stack too (and hides a bottom layer's whiteouts,
    as the container's rootfs overlay does). ``layers``: those directories as overlayfs is to open
    them, when not by their paths (id-mapped trees)."""
    return "lowerdir=" + ":".join(layers if layers is not None else (*tree.layers, tree.empty))


def open_image_dir(syscalls: Syscalls, tree_fd: int, sub_path: str, what: str) -> int:
    """An O_PATH fd (close-on-exec) of directory ``sub_path`` of the image whose root is
    ``tree_fd``. InvalidArgument when the image has no such directory: only a directory can be
    mounted, as with containerd (the KEP leaves single files out)."""
    shown = sub_path or "/"
    try:
        return open_in_root(syscalls, tree_fd, sub_path, os.O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        raise InvalidArgument(f"{what}: sub path {shown!r}: no such file or directory in the image") from None
    except NotADirectoryError:
        raise InvalidArgument(f"{what}: sub path {shown!r} is not a directory in the image; "
                              "only a directory can be mounted") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InvalidArgument(f"{what}: sub path {shown!r}: {os.strerror(e.errno)}") from e
        raise Internal(f"{what}: opening sub path {shown!r}: {e}") from e


def mount_image_tree(syscalls: Syscalls, root_fd: int, target_fd: int, tree: ImageTree, what: str,
                     userns_fd: int = -1, staging: str = "") -> None:
    """Mounts ``tree`` (its sub path only, if it has one) on ``target_fd``, a directory inside the
    root ``root_fd``; with ``userns_fd``, its layers id-mapped through that user namespace and
    attached on numbered directories under ``staging`` until the overlay holds them."""
    if userns_fd >= 0 and not staging:
        raise Internal(f"{what}: id-mapped layers need a staging directory")
    with contextlib.ExitStack() as trees:  # id-mapped layers stay attached until overlayfs has them
        layers = None if userns_fd < 0 else idmapped_layers(
            syscalls, (*tree.layers, tree.empty), userns_fd, staging, trees)
        try:
            syscalls.mount("overlay", fd_path(target_fd), "overlay", IMAGE_TREE_FLAGS, overlay_options(tree, layers))
        except OSError as e:
            raise Internal(f"{what}: mounting the image's {len(tree.layers)} layers: {e}") from e
    if not tree.sub_path:
        return
    # target_fd names the directory underneath; the path now reaches the overlay's root.
    with closing_fd(reopen_in_root(syscalls, root_fd, target_fd)) as overlay:
        with closing_fd(open_image_dir(syscalls, overlay, tree.sub_path, what)) as directory:
            clone = _clone(syscalls, directory, what)
        with closing_fd(clone):
            try:
                syscalls.umount2(fd_path(overlay), k.MNT_DETACH)
                syscalls.move_mount(clone, "", target_fd, "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)
            except OSError as e:
                raise Internal(f"{what}: mounting sub path {tree.sub_path!r} in place of the image: {e}") from e


def _clone(syscalls: Syscalls, directory: int, what: str) -> int:
    try:
        return syscalls.open_tree(directory, "", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH)
    except OSError as e:
        raise Internal(f"{what}: copying the image's sub path: {e}") from e
