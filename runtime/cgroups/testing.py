"""An in-memory CgroupManager for unit tests of the layers above (container and sandbox
managers, stats, metrics): it records what was asked and can be told to fail."""

import signal
from collections.abc import Collection, Sequence

from runtime.cgroups.devices import DeviceRule
from runtime.cgroups.paths import normalize_path
from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.errors import NotFound


class FakeCgroupManager:
    def __init__(self, version: str = "v1") -> None:
        self.version = version
        self.resources: dict[str, Resources] = {}  # path -> last resources applied
        self.procs: dict[str, list[int]] = {}
        self.signals: list[tuple[str, int]] = []  # (path, sig) per kill_all
        self.oom_kills: dict[str, int] = {}
        self.stats_by_path: dict[str, CgroupStats] = {}
        self.errors: dict[str, Exception] = {}  # method name -> raised on its next call
        self.device_rules: dict[str, tuple[DeviceRule, ...]] = {}

    def _maybe_fail(self, method: str) -> None:
        if method in self.errors:
            raise self.errors.pop(method)

    def create(self, path: str, resources: Resources) -> None:
        self._maybe_fail("create")
        path = normalize_path(path)
        self.resources[path] = resources
        self.procs.setdefault(path, [])

    def apply(self, path: str, resources: Resources) -> None:
        self._maybe_fail("apply")
        path = self._existing(path)
        self.resources[path] = resources

    def restrict_devices(self, path: str, rules: Sequence[DeviceRule]) -> None:
        self._maybe_fail("restrict_devices")
        self.device_rules[self._existing(path)] = tuple(rules)

    def add_process(self, path: str, pid: int) -> None:
        self._maybe_fail("add_process")
        self.procs[self._existing(path)].append(pid)

    def tasks_files(self, path: str) -> list[str]:
        self._existing(path)
        return []  # nothing to open: the process is recorded by add_process

    def pids(self, path: str, skip: Collection[str] = ()) -> list[int]:
        path = normalize_path(path)
        skipped = [normalize_path(s) for s in skip]
        return sorted(
            pid for p, pids in self.procs.items() if p == path or p.startswith(path + "/")
            if not any(p == s or p.startswith(s + "/") for s in skipped)
            for pid in pids
        )

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        self._maybe_fail("kill_all")
        self.signals.append((normalize_path(path), sig))

    def remove(self, path: str) -> None:
        self._maybe_fail("remove")
        path = normalize_path(path)
        for p in [p for p in self.resources if p == path or p.startswith(path + "/")]:
            del self.resources[p]
            self.procs.pop(p, None)

    def exists(self, path: str) -> bool:
        return normalize_path(path) in self.resources

    def find(self, names: Collection[str]) -> list[str]:
        matches = [p for p in self.resources if p.rsplit("/", 1)[-1] in names]
        return sorted(p for p in matches if not any(p.startswith(m + "/") for m in matches))

    def hierarchy_dirs(self, path: str) -> dict[str, str] | None:
        return None

    def oom_events(self, path: str) -> int:
        return self.oom_kills.get(normalize_path(path), 0)

    def stats(self, path: str) -> CgroupStats:
        return self.stats_by_path.get(normalize_path(path), CgroupStats())

    def _existing(self, path: str) -> str:
        path = normalize_path(path)
        if path not in self.resources:
            raise NotFound(f"cgroup {path}: does not exist")
        return path
