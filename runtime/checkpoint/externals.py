"""What of a container lies outside it, for CRIU: its external mounts (by path in the container,
with the host path each comes from) and its init's stdio as CRIU names them.

``external_mounts`` is pure: the dump and the restore compute it from each container's own
InitSpec, so a key in the images (the old container's path) finds the new container's source.
``inspect`` reads the running init's /proc entries (``proc_root`` for tests).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from runtime.linux.proc import PROC, open_fds, unescape_mountinfo
from runtime.process.initspec import InitSpec

MASK_SOURCE = "/dev/null"  # what a masked file is bound from (runtime/linux/mounts.py)
_PIPE = re.compile(r"pipe:\[\d+\]")


def external_mounts(spec: InitSpec) -> dict[str, str]:
    """{path in the container: host source} of every bind from the host a container may have."""
    found: dict[str, str] = {path: MASK_SOURCE for path in spec.masked_paths}  # files among them
    if spec.cgroup_v1_dirs:
        found.update({f"/sys/fs/cgroup/{name}": source for name, source in spec.cgroup_v1_dirs.items()})
    if spec.shm_path:
        found["/dev/shm"] = spec.shm_path
    found.update({d.container_path: d.host_path for d in spec.devices})
    found.update({m.target: m.source for m in spec.mounts})
    return found


@dataclass(frozen=True)
class Running:
    """What the dump needs of a running init."""

    net_inode: int
    mounts: dict[str, str]  # mount point in the container → file system type (the last one mounted)
    stdio: tuple[str, ...]  # fds 0-2 as CRIU names them: pipe:[inode], file[mnt_id:inode] (hex), ""
    terminal: bool  # one of them is a terminal


def inspect(pid: int, proc_root: str = PROC) -> Running:
    """OSError when init is gone."""
    base = os.path.join(proc_root, str(pid))
    net_inode = os.stat(os.path.join(base, "ns", "net")).st_ino
    with open(os.path.join(base, "mountinfo")) as f:
        mounts = parse_mounts(f.read())
    fds = open_fds(pid, proc_root)
    terminal = any(fds.get(fd, "").startswith(("/dev/pts/", "/dev/tty", "/dev/console")) for fd in range(3))
    # A terminal cannot be dumped at all (support.py): its stdio need no names.
    stdio = ("", "", "") if terminal else tuple(_stdio_key(base, fd, fds.get(fd, "")) for fd in range(3))
    return Running(net_inode, mounts, stdio, terminal)


def parse_mounts(mountinfo: str) -> dict[str, str]:
    """{mount point: file system type} of a mountinfo; a point mounted over keeps the last."""
    found: dict[str, str] = {}
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        if sep and len(fields := before.split()) >= 5 and after.split():
            found[unescape_mountinfo(fields[4])] = after.split()[0]
    return found


def _stdio_key(base: str, fd: int, target: str) -> str:
    if not target:
        return ""
    if _PIPE.fullmatch(target):
        return target
    mnt_id = _fdinfo_field(os.path.join(base, "fdinfo", str(fd)), "mnt_id")
    inode = os.stat(os.path.join(base, "fd", str(fd))).st_ino
    return f"file[{mnt_id:x}:{inode:x}]"


def _fdinfo_field(path: str, name: str) -> int:
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == name:
                return int(value)
    raise OSError(f"{path}: no {name}")


def dumped_mounts(spec: InitSpec, running: Running) -> tuple[str, ...]:
    """The external mounts init really has: a masked path that does not exist is not mounted, and
    a masked directory is a tmpfs of the container's own (dumped with it, not external)."""
    masked = set(spec.masked_paths)
    return tuple(sorted(p for p in external_mounts(spec)
                        if p in running.mounts and not (p in masked and running.mounts[p] == "tmpfs")))


def external_files(running: Running) -> tuple[str, ...]:
    """Stdio that CRIU must be told is external (files on a mount outside the container)."""
    return tuple(sorted({key for key in running.stdio if key.startswith("file[")}))
