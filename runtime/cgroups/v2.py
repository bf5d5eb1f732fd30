"""Cgroup v2: one directory per cgroup in the unified hierarchy mounted at a root."""

import os
import signal
import time
from collections.abc import Callable, Collection, Sequence
from typing import Literal

from runtime.cgroups import cgroupfs as fs
from runtime.cgroups.devicefilter import program
from runtime.cgroups.devices import DeviceRule
from runtime.cgroups.paths import normalize_path
from runtime.cgroups.resources import FileWrite, Resources, controller_of, v2_writes
from runtime.cgroups.stats import CgroupStats, parse_flat_keyed
from runtime.cgroups.stats_reader import read_v2_stats
from runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound
from runtime.linux.bpf import CgroupDeviceBpf, LinuxCgroupDeviceBpf

# Enabled on the way down even without limits, so usage stats (memory.stat, io.stat, ...) exist.
STATS_CONTROLLERS = frozenset({"cpu", "io", "memory", "pids"})
FREEZE_TIMEOUT_S = 1.0


def controllers_to_enable(wanted: set[str], available: str, enabled: str) -> list[str]:
    """Which controllers a parent must turn on in cgroup.subtree_control (pure).

    Only ones its cgroup.controllers offers: asking for others fails the whole write, and a
    limit that truly needs a missing controller fails later with the file's name in the error.
    """
    return sorted(wanted & set(available.split()) - set(enabled.split()))


def write_memory_max_in_use(directory: str, limit: int) -> None:
    """memory.max of a cgroup that may hold processes and memory. v2 meets a limit below what the
    cgroup holds by OOM-killing in it until it fits, where v1 refuses it (EBUSY) and the kubelet
    counts on the runtime's refusal to reject a resize. So the limit is tried as memory.high first,
    which reclaims what it can and kills nothing: if usage stays above it, memory.high goes back
    and the limit is refused (FailedPrecondition, as v1's EBUSY is), with memory.max unchanged."""
    high = (fs.read_optional(os.path.join(directory, "memory.high")) or "max").strip()
    fs.write(directory, "memory.high", str(limit))
    try:
        usage = int((fs.read_optional(os.path.join(directory, "memory.current")) or "0").strip())
        if usage > limit:
            raise FailedPrecondition(f"cgroup {directory}: memory.max={limit}: {usage} bytes in use "
                                     "could not be reclaimed below it (it would OOM-kill)")
        fs.write(directory, "memory.max", str(limit))
    finally:
        fs.write(directory, "memory.high", high)


class V2Manager:
    version: Literal["v2"] = "v2"

    def __init__(
        self,
        root: str = "/sys/fs/cgroup",
        *,
        kill: Callable[[int, int], None] = os.kill,
        freeze_timeout_s: float = FREEZE_TIMEOUT_S,
        files: fs.StatFiles = fs.EACH_TIME,
        bpf: CgroupDeviceBpf | None = None,
    ) -> None:
        self.root = root
        self._kill = kill
        self._files = files
        self._freeze_timeout_s = freeze_timeout_s
        self._bpf = bpf

    def _dir(self, path: str) -> str:
        return fs.cgroup_dir(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.isdir(self._dir(path))

    def find(self, names: Collection[str]) -> list[str]:
        return sorted(fs.find_named(self.root, names))

    def hierarchy_dirs(self, path: str) -> dict[str, str] | None:
        return None

    def create(self, path: str, resources: Resources) -> None:
        path = normalize_path(path)
        writes = v2_writes(resources)  # invalid resources fail before any mkdir
        leaf = self._dir(path)
        wanted = set(STATS_CONTROLLERS) | {controller_of(w.name) for w in writes}
        wanted.discard("cgroup")  # cgroup.* passthrough keys are core files, not a controller
        current, created = self.root, False
        for part in path.strip("/").split("/"):
            # The leaf enables nothing: a cgroup with controllers on for children can't hold
            # processes ("no internal processes").
            self._enable(current, wanted)
            current = os.path.join(current, part)
            created = fs.make_dir(current)
        try:
            self._write_all(leaf, writes, resources, in_use=False)
        except Exception:
            if created:
                fs.remove_tree_best_effort(leaf)
            raise

    def _enable(self, directory: str, wanted: set[str]) -> None:
        missing = controllers_to_enable(
            wanted,
            fs.read_optional(os.path.join(directory, "cgroup.controllers")) or "",
            fs.read_optional(os.path.join(directory, "cgroup.subtree_control")) or "",
        )
        if missing:
            fs.write(directory, "cgroup.subtree_control", " ".join("+" + c for c in missing))

    def apply(self, path: str, resources: Resources) -> None:
        writes = v2_writes(resources)
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        self._write_all(self._dir(path), writes, resources, in_use=True)

    @staticmethod
    def _write_all(directory: str, writes: list[FileWrite], resources: Resources, in_use: bool) -> None:
        # A unified key is a file the cgroup must have: one its controllers do not provide (not
        # enabled here, or no such file) is the request's error, found before anything is written.
        for key in sorted(resources.unified):
            if not os.path.exists(os.path.join(directory, key)):
                raise InvalidArgument(f"unified {key}: no such file in cgroup {directory} (is its "
                                      f"controller enabled?)")
        for w in writes:
            if in_use and w.name == "memory.max" and w.value != "max":
                write_memory_max_in_use(directory, int(w.value))
            else:
                fs.write(directory, w.name, w.value)

    def restrict_devices(self, path: str, rules: Sequence[DeviceRule]) -> None:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        if self._bpf is None:
            self._bpf = LinuxCgroupDeviceBpf()
        try:
            self._bpf.attach_device_program(self._dir(path), program(rules))
        except OSError as e:
            raise Internal(f"cgroup {path}: device program: {e}") from e

    def add_process(self, path: str, pid: int) -> None:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        fs.write(self._dir(path), "cgroup.procs", str(pid))

    def tasks_files(self, path: str) -> list[str]:
        if not self.exists(path):
            raise NotFound(f"cgroup {path}: does not exist")
        return []  # no per-thread file outside threaded mode: add_process it is

    def pids(self, path: str, skip: Collection[str] = ()) -> list[int]:
        return fs.subtree_pids(self._dir(path), skip={self._dir(s) for s in skip})

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        """Signal every process in the cgroup and below: cgroup.kill for SIGKILL (5.14+),
        otherwise freeze so nothing forks between listing and signalling, then thaw."""
        d = self._dir(path)
        if not os.path.isdir(d):
            return
        if sig == signal.SIGKILL and os.path.exists(os.path.join(d, "cgroup.kill")):
            fs.write(d, "cgroup.kill", "1")
            return
        if not os.path.exists(os.path.join(d, "cgroup.freeze")):
            fs.signal_pids(fs.subtree_pids(d), sig, self._kill)
            return
        fs.write(d, "cgroup.freeze", "1")
        try:
            self._wait_frozen(d)
            fs.signal_pids(fs.subtree_pids(d), sig, self._kill)
        finally:
            fs.write(d, "cgroup.freeze", "0")

    def _wait_frozen(self, d: str) -> None:
        # Bounded: a task stuck in the kernel delays freezing, and the signal arrives at thaw.
        deadline = time.monotonic() + self._freeze_timeout_s
        events = os.path.join(d, "cgroup.events")
        while parse_flat_keyed(fs.read_optional(events)).get("frozen") != 1:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    def remove(self, path: str) -> None:
        fs.remove_tree(self._dir(path))

    def oom_events(self, path: str) -> int:
        """OOM kills in the cgroup (and below); 0 if it is gone or has no memory controller."""
        text = fs.read_optional(os.path.join(self._dir(path), "memory.events"))
        return parse_flat_keyed(text).get("oom_kill", 0)

    def stats(self, path: str) -> CgroupStats:
        return read_v2_stats(self.root, path, files=self._files)
