"""Cgroup v1: one directory per cgroup in every mounted hierarchy under a root.

A hierarchy is a directory ``<root>/<name>`` (cpu, memory, ...); co-mounted ones reached through
symlinks ("cpu" -> "cpu,cpuacct") are the same directory and are handled once.
"""

import os
import signal
import time
from collections.abc import Callable, Collection, Sequence
from typing import Literal

from runtime.cgroups import cgroupfs as fs
from runtime.cgroups.devices import DeviceRule
from runtime.cgroups.devices import v1_writes as device_writes
from runtime.cgroups.paths import normalize_path
from runtime.cgroups.resources import FileWrite, Resources, controller_of, v1_writes
from runtime.cgroups.stats import CgroupStats, parse_flat_keyed, parse_limit
from runtime.cgroups.stats_reader import read_v1_stats
from runtime.errors import FailedPrecondition, NotFound, PycridError

HIERARCHIES = (
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb",
    "net_cls", "net_prio", "perf_event", "rdma", "misc",
    # name=systemd carries no limits; joining it keeps /proc/<pid>/cgroup the same path on
    # every line, which process-to-container lookups rely on.
    "systemd",
)
# The kubelet sends a (possibly 0) limit for every huge page size it knows, even where the
# hugetlb controller is not mounted; there is nothing to enforce then, so those writes are skipped.
_OPTIONAL = frozenset({"hugetlb"})
FREEZE_TIMEOUT_S = 1.0


class V1Manager:
    version: Literal["v1"] = "v1"

    def __init__(
        self,
        root: str = "/sys/fs/cgroup",
        *,
        kill: Callable[[int, int], None] = os.kill,
        freeze_timeout_s: float = FREEZE_TIMEOUT_S,
        files: fs.StatFiles = fs.EACH_TIME,
    ) -> None:
        self.root = root
        self._kill = kill
        self._files = files
        self._freeze_timeout_s = freeze_timeout_s
        self._mounts = {
            name: os.path.join(root, name)
            for name in HIERARCHIES
            if os.path.isdir(os.path.join(root, name))
        }
        seen: dict[str, str] = {}
        for mount in self._mounts.values():
            seen.setdefault(os.path.realpath(mount), mount)
        self._unique = list(seen.values())
        cpuset = self._mounts.get("cpuset")
        self._cpuset = os.path.realpath(cpuset) if cpuset else None
        self._swap_accounting = os.path.exists(
            os.path.join(root, "memory", "memory.memsw.limit_in_bytes")
        )

    def _dirs(self, path: str) -> list[str]:
        return [fs.cgroup_dir(mount, path) for mount in self._unique]

    def exists(self, path: str) -> bool:
        return any(os.path.isdir(d) for d in self._dirs(path))

    def find(self, names: Collection[str]) -> list[str]:
        # A cgroup half-made by a crash may be missing from some hierarchies: look in all.
        return sorted({path for mount in self._unique for path in fs.find_named(mount, names)})

    def hierarchy_dirs(self, path: str) -> dict[str, str] | None:
        path = normalize_path(path)
        return {name: fs.cgroup_dir(mount, path) for name, mount in sorted(self._mounts.items())}

    def create(self, path: str, resources: Resources) -> None:
        path = normalize_path(path)
        self._dirs(path)  # refuses the root cgroup
        writes = self._plan(path, resources)  # invalid resources fail before any mkdir
        created: list[str] = []
        try:
            for mount in self._unique:
                if leaf := self._make_dirs(mount, path):
                    created.append(leaf)
            self._write_all(path, writes)
        except Exception:
            for d in created:
                fs.remove_tree_best_effort(d)
            raise

    def apply(self, path: str, resources: Resources) -> None:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        self._write_all(path, self._plan(path, resources))

    def _plan(self, path: str, resources: Resources) -> list[FileWrite]:
        current = None
        memory = self._mounts.get("memory")
        # The current limit only orders memory vs memsw; read it only when both are written.
        if memory and resources.memory_swap_limit_in_bytes and self._swap_accounting:
            limit_file = os.path.join(fs.cgroup_dir(memory, path), "memory.limit_in_bytes")
            current = parse_limit(fs.read_optional(limit_file))
        return v1_writes(
            resources, current_memory_limit=current, swap_accounting=self._swap_accounting
        )

    def _write_all(self, path: str, writes: list[FileWrite]) -> None:
        for w in writes:
            hierarchy = controller_of(w.name)
            mount = self._mounts.get(hierarchy)
            if mount is None:
                if hierarchy in _OPTIONAL:
                    continue
                raise FailedPrecondition(
                    f"cgroup {path}: hierarchy {hierarchy!r} is not mounted under {self.root},"
                    f" cannot set {w.name}"
                )
            fs.write(fs.cgroup_dir(mount, path), w.name, w.value)

    def _make_dirs(self, mount: str, path: str) -> str | None:
        """mkdir every missing level; the leaf directory if this call created it."""
        current, created = mount, False
        is_cpuset = os.path.realpath(mount) == self._cpuset
        for part in path.strip("/").split("/"):
            parent, current = current, os.path.join(current, part)
            created = fs.make_dir(current)
            if is_cpuset:
                _inherit_cpuset(parent, current)
        return current if created else None

    def restrict_devices(self, path: str, rules: Sequence[DeviceRule]) -> None:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        self._write_all(path, device_writes(rules))

    def add_process(self, path: str, pid: int) -> None:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        for d in self._dirs(path):
            fs.write(d, "cgroup.procs", str(pid))

    def tasks_files(self, path: str) -> list[str]:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        return [os.path.join(d, "tasks") for d in self._dirs(path)]

    def _reference(self) -> str | None:
        # Membership is the same in every hierarchy; the freezer is the one kill_all acts on.
        for name in ("freezer", "pids", "memory", "cpu"):
            if name in self._mounts:
                return self._mounts[name]
        return self._unique[0] if self._unique else None

    def pids(self, path: str, skip: Collection[str] = ()) -> list[int]:
        mount = self._reference()
        if not mount:
            return []
        return fs.subtree_pids(fs.cgroup_dir(mount, path), skip={fs.cgroup_dir(mount, s) for s in skip})

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        """Signal every process in the cgroup and below. With the freezer, nothing can fork
        between listing the pids and signalling them."""
        freezer = self._mounts.get("freezer")
        if freezer is None:
            fs.signal_pids(self.pids(path), sig, self._kill)
            return
        d = fs.cgroup_dir(freezer, path)
        try:
            fs.write(d, "freezer.state", "FROZEN")
            try:
                self._wait_frozen(d)
                fs.signal_pids(fs.subtree_pids(d), sig, self._kill)
            finally:
                fs.write(d, "freezer.state", "THAWED")
        except PycridError:
            if os.path.isdir(d):
                raise
            # Gone (or never made): removed meanwhile by a racing Remove, nothing left to signal.

    def _wait_frozen(self, d: str) -> None:
        # A task in uninterruptible sleep can hold FREEZING for long; signalling anyway is safe
        # (the signal is delivered at thaw), so the wait is bounded.
        deadline = time.monotonic() + self._freeze_timeout_s
        while (fs.read_optional(os.path.join(d, "freezer.state")) or "").strip() != "FROZEN":
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    def remove(self, path: str) -> None:
        for d in self._dirs(path):
            fs.remove_tree(d)

    def oom_events(self, path: str) -> int:
        """OOM kills in the cgroup (and below); 0 if it or its memory hierarchy is gone."""
        memory = self._mounts.get("memory")
        if memory is None:
            return 0
        text = fs.read_optional(os.path.join(fs.cgroup_dir(memory, path), "memory.oom_control"))
        return parse_flat_keyed(text).get("oom_kill", 0)

    def stats(self, path: str) -> CgroupStats:
        return read_v1_stats(self.root, path, files=self._files)


def _inherit_cpuset(parent: str, child: str) -> None:
    """A new v1 cpuset starts with empty cpus/mems, and a process cannot join it until both are
    set: copy the parent's. Done for existing levels too, to repair a sibling's half-made parent."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if (fs.read_optional(os.path.join(child, name)) or "").strip():
            continue
        value = (fs.read_optional(os.path.join(parent, name)) or "").strip()
        if value:
            fs.write(child, name, value)
