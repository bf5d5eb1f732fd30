"""Restoring a container's process tree with CRIU, in the pod monitor's starter (runtime/process/
starter.py) instead of forking init.

The starter joins the container's cgroup (so CRIU and the tree it restores are in it), mounts
the container's overlay in a mount namespace of its own (CRIU builds the container's mount
namespace on it, with --root) and runs ``criu restore --restore-detached``: the restored init
is CRIU's child, and when CRIU exits it goes to the nearest subreaper, the pod monitor, which
watches and reaps it like any container's init. CRIU makes the PID namespace; the network
namespace is the new pod's (inherited by descriptor), IPC and UTS the new pod's (joined); the
dumped stdio become the monitor's new pipes.
"""
from __future__ import annotations

import os

from runtime.cgroups.manager import new_manager
from runtime.checkpoint.criu import CriuBinary, RestorePlan, restore_args
from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls
from runtime.process.initspec import HOST, InitSpec

RESTORE_TIMEOUT = 300.0  # CRIU's own bound; the pod monitor ends the start at its deadline first
PIDFILE = "restore.pid"


def restore(spec: InitSpec, stdio: tuple[int, int, int], syscalls: Syscalls) -> int:
    """The restored init's pid (on the host)."""
    r = spec.restore
    if r is None:
        raise Internal(f"container {spec.id}: nothing to restore")
    if spec.cgroup:
        new_manager().add_process(spec.cgroup, os.getpid())
    mount_rootfs(spec, syscalls)
    pidfile = os.path.join(r.images_dir, PIDFILE)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    netns = os.open(spec.namespaces.net, os.O_RDONLY | os.O_CLOEXEC)
    try:
        join = tuple((kind, path) for kind, path in (("ipc", spec.namespaces.ipc), ("uts", spec.namespaces.uts))
                     if path not in ("", HOST))
        plan = RestorePlan(r.images_dir, spec.rootfs, pidfile, netns, join, r.mounts, stdio_keys(r.stdio, stdio))
        CriuBinary(r.criu, own_group=False).run(restore_args(plan), r.images_dir, RESTORE_TIMEOUT,
                                                pass_fds=(netns, *stdio))
    finally:
        os.close(netns)
    with open(pidfile) as f:
        return int(f.read().strip())


def stdio_keys(keys: tuple[str, ...], fds: tuple[int, int, int]) -> tuple[tuple[str, int], ...]:
    """Each dumped stdio key, once, with the new fd that takes its place."""
    given: dict[str, int] = {}
    for key, fd in zip(keys, fds, strict=False):
        if key and key not in given:
            given[key] = fd
    return tuple(given.items())


def mount_rootfs(spec: InitSpec, syscalls: Syscalls) -> None:
    """The overlay, in a mount namespace of the starter's own that nothing leaks out of."""
    syscalls.unshare(k.CLONE_NEWNS)
    syscalls.mount(None, "/", None, k.MS_REC | k.MS_SLAVE)
    os.makedirs(spec.rootfs, exist_ok=True)
    data = f"lowerdir={':'.join(spec.lowerdirs)},upperdir={spec.upperdir},workdir={spec.workdir}"
    syscalls.mount("overlay", spec.rootfs, "overlay", 0, data)
