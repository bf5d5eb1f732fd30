"""The cgroup API the rest of the runtime uses, and the choice of driver for a node.

Paths are absolute cgroup paths ("/kubepods/pod<uid>/<id>", see paths.py), the same for v1 and
v2. Everything acts under the root it is given, so unit tests point it at a fake tree.
"""

import os
import signal
from collections.abc import Callable, Collection, Sequence
from typing import Literal, Protocol

from runtime.cgroups.cgroupfs import EACH_TIME, StatFiles
from runtime.cgroups.devices import DeviceRule
from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager
from runtime.linux.bpf import CgroupDeviceBpf

DEFAULT_ROOT = "/sys/fs/cgroup"
CgroupVersion = Literal["v1", "v2"]


class CgroupManager(Protocol):
    @property
    def version(self) -> CgroupVersion: ...  # read-only, so V1Manager's Literal["v1"] fits

    def create(self, path: str, resources: Resources) -> None:
        """Make the cgroup (and missing parents) and apply the limits; idempotent. On failure
        the leaf it made is removed again."""

    def apply(self, path: str, resources: Resources) -> None:
        """Change limits of an existing cgroup live (UpdateContainerResources); NotFound if gone."""

    def restrict_devices(self, path: str, rules: Sequence[DeviceRule]) -> None:
        """Deny the cgroup every device access but what ``rules`` allow (devices.py): v1's
        devices.deny/allow, v2's device program (devicefilter.py). Replaces earlier rules."""

    def add_process(self, path: str, pid: int) -> None:
        """Move ``pid`` (all its threads) into the cgroup."""

    def tasks_files(self, path: str) -> list[str]:
        """The files a single-threaded process writes "0" to in order to move itself into the
        cgroup (selfjoin.py): v1's ``tasks`` in every hierarchy; [] on v2, which has none.
        NotFound if the cgroup does not exist."""

    def pids(self, path: str, skip: Collection[str] = ()) -> list[int]:
        """Sorted pids in the cgroup and its descendants, except in the descendant cgroups
        ``skip`` (the caller has read those); [] if it does not exist."""

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        """Signal every process in the cgroup and its descendants; nothing if it does not exist.
        Returns without waiting for them to exit (remove() waits for that)."""

    def remove(self, path: str) -> None:
        """rmdir the cgroup and its descendants, leaf-first; a missing cgroup is fine. Waits
        briefly for exiting processes, then raises Internal if it is still busy."""

    def exists(self, path: str) -> bool: ...

    def find(self, names: Collection[str]) -> list[str]:
        """Sorted paths of every cgroup (in any hierarchy) whose own name is one of ``names``, for
        reclaiming the cgroups of an object whose record is lost; not below a match."""

    def hierarchy_dirs(self, path: str) -> dict[str, str] | None:
        """v1: {hierarchy name: the cgroup's directory in it}, what a container sees under
        /sys/fs/cgroup; v2: None (the container mounts cgroup2 itself)."""

    def oom_events(self, path: str) -> int:
        """OOM kills in the cgroup (and below) so far; 0 if it is gone."""

    def stats(self, path: str) -> CgroupStats:
        """Usage read now; fields are None where files are missing (all None if it is gone)."""


def detect(root: str = DEFAULT_ROOT) -> CgroupVersion:
    """v2 when the root itself is a cgroup2 mount (cgroup.controllers at the top); hybrid
    setups (v1 controllers plus an empty cgroup2 at <root>/unified) count as v1."""
    return "v2" if os.path.exists(os.path.join(root, "cgroup.controllers")) else "v1"


def new_manager(
    root: str = DEFAULT_ROOT, *, kill: Callable[[int, int], None] = os.kill,
    files: StatFiles = EACH_TIME, bpf: CgroupDeviceBpf | None = None,
) -> CgroupManager:
    """The driver for the hierarchy mounted at ``root``; ``kill`` is the signal seam,
    ``files`` reads the stat files of stats() (HeldFiles keeps them open) and ``bpf`` attaches
    v2's device programs (the kernel's when None)."""
    if detect(root) == "v2":
        return V2Manager(root, kill=kill, files=files, bpf=bpf)
    return V1Manager(root, kill=kill, files=files)
