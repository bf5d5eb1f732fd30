"""Id-mapped mounts: a detached copy of a mount tree whose file owners are seen through a user
namespace's mapping (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12+;
overlayfs takes id-mapped lower layers since 5.19, tmpfs can be id-mapped since 6.3). overlayfs
clones each layer's mount, and kernels before 6.15 (6.1, Debian 12's, among them) clone only a
mount of the caller's namespace: a detached tree is refused ("failed to clone lowerpath", EINVAL).
So a layer is attached (attach_tree) on a directory of the caller's private mount namespace first.

With a pod's mapping 0 -> H, a file the host owns as uid 0 appears owned by H, that is by the
pod's root, and what the pod's root creates there is stored as uid 0. A filesystem that cannot be
id-mapped is a FailedPrecondition naming the path: the node cannot run this pod as asked.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.errors import FailedPrecondition
from runtime.linux import constants as k
from runtime.linux.newuserns import user_namespace_child
from runtime.linux.rootfs import closing_fd
from runtime.linux.syscalls import Syscalls

PROBE_MAP = "0 65536 65536\n"  # any mapping will do to ask a filesystem


@dataclass(frozen=True)
class IdmapSupport:
    """Whether this node can make the id-mapped mounts user namespace pods need."""

    problem: str = ""  # why not; "" when it can

    @property
    def supported(self) -> bool:
        return not self.problem


NOT_PROBED = IdmapSupport("id-mapped mounts were not probed on this node")


def idmapped_tree(syscalls: Syscalls, source: str, userns_fd: int, recursive: bool) -> int:
    """A detached, id-mapped copy of the mount at ``source`` (with the mounts below it when
    ``recursive``): an fd to attach with move_mount or to give overlayfs as a layer, then close."""
    flags = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH | (k.AT_RECURSIVE if recursive else 0)
    try:
        with closing_fd(os.open(source, os.O_PATH | os.O_CLOEXEC)) as where:
            tree = syscalls.open_tree(where, "", flags)
    except OSError as e:
        raise FailedPrecondition(f"id-mapping {source}: {e}") from e
    try:
        syscalls.mount_setattr_idmap(tree, userns_fd, recursive)
    except OSError as e:
        os.close(tree)
        raise FailedPrecondition(f"id-mapping {source}: its filesystem does not support id-mapped mounts "
                                 f"here ({e})") from e
    return tree


def attach_tree(syscalls: Syscalls, tree_fd: int, mountpoint: str, unmounts: contextlib.ExitStack) -> str:
    """Attaches the detached ``tree_fd`` on ``mountpoint`` (made if missing) for overlayfs to take
    as a layer; ``unmounts`` detaches it again, once overlayfs holds its own copy. Call it in a
    mount namespace of the container's own, where nothing propagates back to the host."""
    os.makedirs(mountpoint, mode=0o700, exist_ok=True)
    syscalls.move_mount(tree_fd, "", k.AT_FDCWD, mountpoint, k.MOVE_MOUNT_F_EMPTY_PATH)
    unmounts.callback(syscalls.umount2, mountpoint, k.MNT_DETACH)
    return mountpoint


def idmapped_layers(syscalls: Syscalls, layers: Sequence[str], userns_fd: int, staging: str,
                    held: contextlib.ExitStack) -> tuple[str, ...]:
    """``layers`` id-mapped through ``userns_fd``, each attached on ``staging``/<its index>: the
    paths to give overlayfs. ``held`` keeps them until the overlay is mounted, then detaches them."""
    paths = []
    for i, layer in enumerate(layers):
        tree = held.enter_context(closing_fd(idmapped_tree(syscalls, layer, userns_fd, recursive=False)))
        paths.append(attach_tree(syscalls, tree, os.path.join(staging, str(i)), held))
    return tuple(paths)


def probe(paths: Sequence[str], syscalls: Syscalls) -> IdmapSupport:
    """Tries to id-map each of ``paths`` through a throwaway user namespace (forks: call it from a
    single-threaded process); the first failure is the problem."""
    with user_namespace_child(PROBE_MAP, PROBE_MAP, lambda: None, syscalls) as pid:
        userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for path in paths:
                try:
                    os.close(idmapped_tree(syscalls, path, userns, recursive=False))
                except FailedPrecondition as e:
                    return IdmapSupport(str(e))
        finally:
            os.close(userns)
    return IdmapSupport()
