"""The mounts of a container: the standard plan (pure data, containerd's defaults) and applying it
inside a rootfs through the ``Syscalls`` seam.

Every target (and every device node, masked or read-only path) is opened once inside the root
(runtime/linux/rootfs.py) and mounted on by fd, so an image whose ``/proc`` or ``/dev`` is a
symlink cannot make us mount over a host path, nor can a container that swaps a component of a
shared volume for a symlink while we work (CVE-2021-30465). Before pivot_root, /proc is still
the host's, where /proc/self/fd names our own fds.

In a pod with a user namespace, init mounts all of this as the host's root, in a mount namespace
the host's user namespace owns, and enters the pod's only afterwards: sysfs, proc, devices and
cgroups mount as for any container. What the pod's root must own is given to it: /dev (a tmpfs
owned by the pod's root), the terminals' group, and the binds marked ``idmap`` (attached as
id-mapped trees, runtime/linux/idmap.py).
"""

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.idmap import idmapped_tree
from runtime.linux.imagetree import ImageTree, mount_image_tree
from runtime.linux.rootfs import (
    closing_fd,
    fd_path,
    make_in_root,
    open_in_root,
    opened_root,
    reopen_in_root,
)
from runtime.linux.syscalls import Syscalls

NOSUID_NOEXEC_NODEV = k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV
PROPAGATIONS = {
    "private": k.MS_PRIVATE,
    "rprivate": k.MS_PRIVATE | k.MS_REC,
    "slave": k.MS_SLAVE,
    "rslave": k.MS_SLAVE | k.MS_REC,
    "shared": k.MS_SHARED,
    "rshared": k.MS_SHARED | k.MS_REC,
}
# containerd's defaults for unprivileged containers.
DEFAULT_MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
# gid 5 is "tty" in every common image; ptmxmode lets anyone open this instance's /dev/pts/ptmx.
TTY_GID = 5
_DEVPTS = "newinstance,ptmxmode=0666,mode=0620"
DEVPTS_OPTIONS = f"{_DEVPTS},gid={TTY_GID}"
DEV_OPTIONS = "mode=755,size=65536k"
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class MountSpec:
    source: str | None
    target: str  # as the container sees it
    fstype: str | None  # None for a bind mount
    flags: int = 0
    data: str | None = None
    propagation: int = 0  # a PROPAGATIONS value, applied after mounting
    recursive_readonly: bool = False  # every mount below target too (binds with MS_REC)
    image: ImageTree | None = None  # an image volume: the image's filesystem, not ``source``
    idmap: bool = False  # a bind (or an image volume's layers) id-mapped through the plan's user namespace


@dataclass(frozen=True)
class DeviceNode:
    path: str
    major: int
    minor: int
    mode: int = 0o666


STANDARD_DEVICES = (
    DeviceNode("/dev/null", 1, 3),
    DeviceNode("/dev/zero", 1, 5),
    DeviceNode("/dev/full", 1, 7),
    DeviceNode("/dev/random", 1, 8),
    DeviceNode("/dev/urandom", 1, 9),
    DeviceNode("/dev/tty", 5, 0),
)
STANDARD_SYMLINKS = (  # (path, link text)
    ("/dev/ptmx", "pts/ptmx"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
)


@dataclass(frozen=True)
class MountPlan:
    """Applied in field order: mounts, devices, symlinks, then masked and read-only paths."""

    mounts: tuple[MountSpec, ...]
    devices: tuple[DeviceNode, ...] = STANDARD_DEVICES
    bind_devices: bool = False  # bind the host's nodes instead of mknod (needed in a user namespace)
    symlinks: tuple[tuple[str, str], ...] = STANDARD_SYMLINKS
    masked: tuple[str, ...] = DEFAULT_MASKED_PATHS
    readonly: tuple[str, ...] = DEFAULT_READONLY_PATHS
    idmap_userns: str = ""  # the user namespace (a pinned file) that ``idmap`` binds map through
    layer_staging: str = ""  # where an id-mapped image volume's layers are attached for overlayfs


def bind(
    source: str,
    target: str,
    readonly: bool = False,
    recursive: bool = True,
    recursive_readonly: bool = False,
    propagation: int = 0,
    flags: int = 0,
    idmap: bool = False,
) -> MountSpec:
    """A bind mount; ``readonly`` makes the top mount read-only, ``recursive_readonly`` all of them."""
    flags |= k.MS_BIND | (k.MS_REC if recursive else 0) | (k.MS_RDONLY if readonly else 0)
    return MountSpec(source, target, None, flags, None, propagation, recursive_readonly, idmap=idmap)


def image_tree(tree: ImageTree, target: str, recursive_readonly: bool = False, propagation: int = 0,
               idmap: bool = False) -> MountSpec:
    """An image volume: ``tree`` mounted read-only on ``target`` (runtime/linux/imagetree.py), its
    layers id-mapped with ``idmap``."""
    return MountSpec(None, target, None, 0, None, propagation, recursive_readonly, tree, idmap)


def _cgroup_mounts(cgroup_v1: Mapping[str, str] | None, privileged: bool) -> list[MountSpec]:
    ro = 0 if privileged else k.MS_RDONLY
    if cgroup_v1 is None:
        # cgroup2 shows the container's own cgroup as its root when it has a cgroup namespace.
        return [MountSpec("cgroup", "/sys/fs/cgroup", "cgroup2", NOSUID_NOEXEC_NODEV | k.MS_RELATIME | ro)]
    # v1: a tmpfs with one bind per hierarchy of the container's own cgroup directory, as runc
    # does without a cgroup namespace (mounting the hierarchy would show the host's whole tree).
    return [
        MountSpec("tmpfs", "/sys/fs/cgroup", "tmpfs", NOSUID_NOEXEC_NODEV, "mode=755"),
        *(
            bind(source, f"/sys/fs/cgroup/{name}", readonly=not privileged, flags=NOSUID_NOEXEC_NODEV)
            for name, source in sorted(cgroup_v1.items())
        ),
    ]


def container_mount_plan(
    privileged: bool = False,
    shm_source: str | None = None,
    cgroup_v1: Mapping[str, str] | None = None,
    bind_devices: bool = False,
    extra_mounts: Sequence[MountSpec] = (),
    idmap_userns: str = "",
    layer_staging: str = "",
    root_owner: tuple[int, int] | None = None,
    tty_gid: int | None = TTY_GID,
) -> MountPlan:
    """The standard mounts of a container, then ``extra_mounts`` (volumes, /etc/hosts, ...).

    shm_source: the pod's /dev/shm to bind (containers sharing the pod's IPC namespace); a fresh
    tmpfs otherwise. cgroup_v1: {hierarchy directory: the container's cgroup directory in it} on a
    v1 host; None mounts cgroup2. Privileged containers get /sys and cgroups read-write and no
    masked or read-only paths. In a user namespace (``idmap_userns``, its pinned file): /dev is
    owned by ``root_owner`` (the host uid and gid of the pod's root), terminals by ``tty_gid`` (the
    host gid of the pod's tty group; None: the mounter's); the pod's /dev/shm, its own tmpfs, is
    the pod root's already (runtime/sandbox/namespaces.py). ``layer_staging``: where id-mapped
    image volume layers are attached for overlayfs."""
    ro = 0 if privileged else k.MS_RDONLY
    shm = (
        bind(shm_source, "/dev/shm", flags=NOSUID_NOEXEC_NODEV)
        if shm_source
        else MountSpec("shm", "/dev/shm", "tmpfs", NOSUID_NOEXEC_NODEV, "mode=1777,size=65536k")
    )
    dev = DEV_OPTIONS + (f",uid={root_owner[0]},gid={root_owner[1]}" if root_owner else "")
    devpts = _DEVPTS + (f",gid={tty_gid}" if tty_gid is not None else "")
    mounts = [
        MountSpec("proc", "/proc", "proc", NOSUID_NOEXEC_NODEV),
        MountSpec("tmpfs", "/dev", "tmpfs", k.MS_NOSUID | k.MS_STRICTATIME, dev),
        MountSpec("devpts", "/dev/pts", "devpts", k.MS_NOSUID | k.MS_NOEXEC, devpts),
        shm,
        MountSpec("mqueue", "/dev/mqueue", "mqueue", NOSUID_NOEXEC_NODEV),
        MountSpec("sysfs", "/sys", "sysfs", NOSUID_NOEXEC_NODEV | ro),
        *_cgroup_mounts(cgroup_v1, privileged),
        *extra_mounts,
    ]
    readonly = DEFAULT_READONLY_PATHS + (("/sys/fs/cgroup",) if cgroup_v1 is not None else ())
    return MountPlan(
        mounts=tuple(mounts),
        bind_devices=bind_devices,
        masked=() if privileged else DEFAULT_MASKED_PATHS,
        readonly=() if privileged else readonly,
        idmap_userns=idmap_userns,
        layer_staging=layer_staging,
    )


def _locked_flags(path: str) -> int:
    """The per-mount flags already on ``path`` that a bind-remount must repeat (ST_* -> MS_*)."""
    st_flags = os.statvfs(path).f_flag
    flags = st_flags & (k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC | k.MS_NOATIME | k.MS_NODIRATIME)
    return flags | (k.MS_RELATIME if st_flags & os.ST_RELATIME else 0)


def _remount(syscalls: Syscalls, path: str, flags: int) -> None:
    syscalls.mount(None, path, None, k.MS_BIND | k.MS_REMOUNT | flags | _locked_flags(path))


def mount_one(syscalls: Syscalls, spec: MountSpec, rootfs: str) -> None:
    with opened_root(rootfs) as root_fd:
        _mount(syscalls, root_fd, rootfs, spec)


def _mount(syscalls: Syscalls, root_fd: int, rootfs: str, spec: MountSpec, userns_fd: int = -1,
           staging: str = "") -> None:
    is_bind = bool(spec.flags & k.MS_BIND)
    first_flags = spec.flags & (k.MS_BIND | k.MS_REC) if is_bind else spec.flags
    # The kernel ignores other flags on the first bind; they need a remount.
    remount_flags = spec.flags & ~(k.MS_BIND | k.MS_REC) if is_bind else 0
    if spec.idmap and (userns_fd < 0 or not (is_bind or spec.image)):
        raise Internal(f"mounting {spec.source} on {spec.target}: id-mapped, but not a bind in a user namespace")
    try:
        is_file = is_bind and not os.path.isdir(spec.source or "")
        with closing_fd(make_in_root(syscalls, root_fd, spec.target, file=is_file)) as target_fd:
            if spec.image is not None:
                mount_image_tree(syscalls, root_fd, target_fd, spec.image, f"image volume at {spec.target}",
                                 userns_fd if spec.idmap else -1, staging)
            elif spec.idmap:
                with closing_fd(idmapped_tree(syscalls, spec.source or "", userns_fd,
                                              recursive=bool(spec.flags & k.MS_REC))) as tree:
                    syscalls.move_mount(tree, "", target_fd, "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)
            else:
                syscalls.mount(spec.source, fd_path(target_fd), spec.fstype, first_flags, spec.data)
            if not (remount_flags or spec.recursive_readonly or spec.propagation):
                return
            # target_fd still names the directory underneath the new mount.
            with closing_fd(reopen_in_root(syscalls, root_fd, target_fd)) as mounted:
                if remount_flags:
                    _remount(syscalls, fd_path(mounted), remount_flags)
                if spec.recursive_readonly:
                    # Every mount below the bind too, in one call (Linux 5.12+): the agent refuses
                    # recursive read-only mounts on kernels without mount_setattr.
                    syscalls.mount_setattr(fd_path(mounted), k.MOUNT_ATTR_RDONLY, recursive=True)
                if spec.propagation:
                    syscalls.mount(None, fd_path(mounted), None, spec.propagation)
    except OSError as e:
        raise Internal(f"mounting {spec.source} on {spec.target} in {rootfs}: {e}") from e


def _open_existing(syscalls: Syscalls, root_fd: int, path: str) -> int | None:
    try:
        return open_in_root(syscalls, root_fd, path, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _create_device(syscalls: Syscalls, root_fd: int, rootfs: str, device: DeviceNode, bind_host: bool) -> None:
    if bind_host:
        _mount(syscalls, root_fd, rootfs, bind(device.path, device.path, recursive=False))
        return
    old_umask = os.umask(0)  # mknod's mode is filtered by the umask; devices need exactly theirs
    try:
        directory = open_in_root(syscalls, root_fd, os.path.dirname(device.path), os.O_PATH | os.O_DIRECTORY)
        with closing_fd(directory):
            syscalls.mknod(f"{fd_path(directory)}/{os.path.basename(device.path)}",
                           stat.S_IFCHR | device.mode, os.makedev(device.major, device.minor))
    except OSError as e:
        raise Internal(f"creating device {device.path} in {rootfs}: {e}") from e
    finally:
        os.umask(old_umask)


def _create_symlink(syscalls: Syscalls, root_fd: int, rootfs: str, path: str, text: str) -> None:
    try:
        directory = open_in_root(syscalls, root_fd, os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
        with closing_fd(directory):
            os.symlink(text, os.path.basename(path), dir_fd=directory)
    except FileExistsError:
        pass  # the image or a bind already provides it
    except OSError as e:
        raise Internal(f"creating symlink {path} -> {text} in {rootfs}: {e}") from e


def mask_path(syscalls: Syscalls, root_fd: int, rootfs: str, path: str) -> None:
    """Hide ``path``: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        fd = _open_existing(syscalls, root_fd, path)
        if fd is None:
            return
        with closing_fd(fd):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                syscalls.mount("tmpfs", fd_path(fd), "tmpfs", k.MS_RDONLY, None)
            else:
                syscalls.mount("/dev/null", fd_path(fd), None, k.MS_BIND, None)
    except OSError as e:
        raise Internal(f"masking {path} in {rootfs}: {e}") from e


def readonly_path(syscalls: Syscalls, root_fd: int, rootfs: str, path: str) -> None:
    """Make ``path`` read-only by binding it onto itself and remounting that bind read-only."""
    try:
        fd = _open_existing(syscalls, root_fd, path)
        if fd is None:
            return
        with closing_fd(fd):
            syscalls.mount(fd_path(fd), fd_path(fd), None, k.MS_BIND | k.MS_REC, None)
            with closing_fd(reopen_in_root(syscalls, root_fd, fd)) as mounted:
                _remount(syscalls, fd_path(mounted), k.MS_RDONLY)
    except OSError as e:
        raise Internal(f"making {path} read-only in {rootfs}: {e}") from e


def apply_mount_plan(syscalls: Syscalls, plan: MountPlan, rootfs: str) -> None:
    """Carry out ``plan`` inside ``rootfs`` (before pivot_root; "/" after it)."""
    userns = os.open(plan.idmap_userns, os.O_RDONLY | os.O_CLOEXEC) if plan.idmap_userns else -1
    try:
        with opened_root(rootfs) as root_fd:
            _apply(syscalls, plan, rootfs, root_fd, userns)
    finally:
        if userns >= 0:
            os.close(userns)


def _apply(syscalls: Syscalls, plan: MountPlan, rootfs: str, root_fd: int, userns: int) -> None:
    for spec in plan.mounts:
        _mount(syscalls, root_fd, rootfs, spec, userns, plan.layer_staging)
    for device in plan.devices:
        _create_device(syscalls, root_fd, rootfs, device, plan.bind_devices)
    for path, text in plan.symlinks:
        _create_symlink(syscalls, root_fd, rootfs, path, text)
    for path in plan.masked:
        mask_path(syscalls, root_fd, rootfs, path)
    for path in plan.readonly:
        readonly_path(syscalls, root_fd, rootfs, path)
