"""A container's mounts from its InitSpec, decided before init acts on them. Pure.

The rootfs is an overlay of the image's layers under the container's upper directory; in a pod
with a user namespace each layer is an id-mapped tree (attached on a directory of the container's
layer_staging for overlayfs to take: runtime/linux/idmap.py), so the image's root-owned files are
the pod root's, while what the container writes lands in the upper directory owned by the pod's
host ids (the manager chowns it to the pod's root when it creates it). The rest is
runtime/linux/mounts.py's standard plan with the spec's mounts, devices, masked and read-only
paths, and in a user namespace the owners it gives the pod's root.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from runtime.container.model import UserNamespace
from runtime.linux import constants as k
from runtime.linux.mounts import (
    DEFAULT_READONLY_PATHS,
    PROPAGATIONS,
    TTY_GID,
    MountPlan,
    bind,
    container_mount_plan,
    image_tree,
)
from runtime.process.initspec import InitSpec
from runtime.sandbox.userns import root_owner, to_host


def layer_staging(rootfs: str) -> str:
    """Where id-mapped layers are attached until overlayfs holds them: beside the rootfs, in the
    container's state directory (removed with it). Reused: each overlay's layers are detached
    from it as soon as that overlay is mounted."""
    return os.path.join(os.path.dirname(rootfs), "layers")


def overlay_options(spec: InitSpec, layers: Sequence[str]) -> str:
    """The overlay's mount data; ``layers`` are the lower directories as overlayfs is to open them
    (the spec's own, or the paths of their id-mapped trees), top first."""
    return f"lowerdir={':'.join(layers)},upperdir={spec.upperdir},workdir={spec.workdir}"


# devpts' gid= is read as a signed int by older kernels (6.1 refuses 3321364485 with EINVAL),
# and the kubelet picks pod ranges up to 2^32.
DEVPTS_MAX_GID = 2**31 - 1


def _tty_gid(userns: UserNamespace | None) -> int | None:
    """The host gid of the pod's tty group; None (terminals get their opener's group) when its
    user namespace does not map it, or maps it past what devpts takes everywhere."""
    if userns is None:
        return TTY_GID
    if TTY_GID >= userns.gids.length:
        return None
    gid = to_host(userns.gids, TTY_GID)
    return gid if gid <= DEVPTS_MAX_GID else None


def container_plan(spec: InitSpec) -> MountPlan:
    extra = [image_tree(m.image, m.target, m.recursive_readonly, PROPAGATIONS[m.propagation], idmap=m.idmap)
             if m.image else
             bind(m.source, m.target, readonly=m.readonly, recursive_readonly=m.recursive_readonly,
                  propagation=PROPAGATIONS[m.propagation], idmap=m.idmap)
             for m in spec.mounts]
    extra += [bind(d.host_path, d.container_path, recursive=False) for d in spec.devices]
    userns = spec.userns if spec.namespaces.user else None
    plan = container_mount_plan(privileged=spec.privileged, shm_source=spec.shm_path or None,
                                cgroup_v1=spec.cgroup_v1_dirs, extra_mounts=extra,
                                idmap_userns=spec.namespaces.user if userns else "",
                                layer_staging=layer_staging(spec.rootfs) if userns else "",
                                root_owner=root_owner(userns) if userns else None, tty_gid=_tty_gid(userns))
    # The spec's lists replace the defaults; the plan's own additions (the v1 cgroup tmpfs) stay.
    own = tuple(p for p in plan.readonly if p not in DEFAULT_READONLY_PATHS)
    plan = replace(plan, masked=spec.masked_paths, readonly=spec.readonly_paths + own)
    if spec.privileged:
        # Privileged containers see the host's devices, as with containerd and CRI-O.
        plan = replace(plan, devices=(), symlinks=(), mounts=tuple(
            bind("/dev", "/dev", flags=k.MS_NOSUID) if m.target == "/dev" else m for m in plan.mounts))
    return plan
