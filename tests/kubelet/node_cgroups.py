"""The cgroup root a test kubelet puts its kubepods tree under: made in every hierarchy before the
kubelet starts (it checks that the root exists) and removed, with what is below it, afterwards."""
from __future__ import annotations

import os
from pathlib import Path

from runtime.cgroups.cgroupfs import remove_tree

CGROUP_MOUNTS = "/sys/fs/cgroup"


def hierarchies(mountinfo: str) -> tuple[str, ...]:
    """The mount points of cgroup hierarchies (v1 controllers, or the single v2 one) in a
    /proc/self/mountinfo text."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2") and fields[4].startswith(CGROUP_MOUNTS):
            found.append(fields[4])
    return tuple(found)


def mounted_hierarchies() -> tuple[str, ...]:
    return hierarchies(Path("/proc/self/mountinfo").read_text())


def make_root(name: str) -> None:
    """``name`` ("/pycrid-kubelet-xxxx") in every hierarchy; a v1 cpuset cgroup starts with no
    CPUs or memory nodes, so it gets its parent's (on v2 an empty cpuset.cpus means the parent's)."""
    for hierarchy in mounted_hierarchies():
        path = Path(hierarchy, name.lstrip("/"))
        path.mkdir()
        if (path / "cpuset.cpus").exists() and not (path / "cgroup.controllers").exists():
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (path / knob).write_text((path.parent / knob).read_text())


def remove_root(name: str) -> None:
    """``name`` and every cgroup below it, in every hierarchy (they must be empty of processes)."""
    for hierarchy in mounted_hierarchies():
        remove_tree(os.path.join(hierarchy, name.lstrip("/")))


def left_of(name: str) -> tuple[str, ...]:
    return tuple(p for h in mounted_hierarchies() if os.path.exists(p := os.path.join(h, name.lstrip("/"))))
