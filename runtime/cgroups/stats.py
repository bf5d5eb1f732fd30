"""Cgroup statistics: the value types and pure parsers of the kernel's file formats.

One CgroupStats feeds ContainerStats, PodSandboxStats, ListPodSandboxMetrics and the Prometheus
collector, so they never disagree. Every field is None when its file is absent (controller not
enabled, older kernel, cgroup gone): absence is information, not an error.
"""

from collections.abc import Collection
from dataclasses import dataclass

# v1 prints "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB pages;
# less with larger pages). No machine has 2^62 bytes, so anything above means unlimited.
_V1_UNLIMITED_FROM = 1 << 62


@dataclass(frozen=True)
class CpuStats:
    usage_ns: int | None = None
    user_ns: int | None = None
    system_ns: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_ns: int | None = None


@dataclass(frozen=True)
class MemoryStats:
    usage_bytes: int | None = None
    # usage - inactive_file, clamped at 0: what the kubelet evicts on and cAdvisor reports.
    working_set_bytes: int | None = None
    rss_bytes: int | None = None
    cache_bytes: int | None = None
    mapped_file_bytes: int | None = None
    swap_bytes: int | None = None
    max_usage_bytes: int | None = None
    failcnt: int | None = None
    pgfault: int | None = None  # this cgroup and its descendants
    pgmajfault: int | None = None
    # This cgroup alone (cAdvisor's scope="container"): v1's memory.stat pgfault without total_;
    # v2 counts only hierarchically, so there it equals pgfault (as cAdvisor reports it).
    local_pgfault: int | None = None
    local_pgmajfault: int | None = None
    # None also when there is no limit.
    limit_bytes: int | None = None
    oom_kills: int | None = None


@dataclass(frozen=True)
class PidsStats:
    current: int | None = None
    # None also when there is no limit ("max").
    limit: int | None = None


@dataclass(frozen=True)
class DeviceIO:
    major: int
    minor: int
    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0


@dataclass(frozen=True)
class PressureLine:
    avg10: float
    avg60: float
    avg300: float
    total_us: int


@dataclass(frozen=True)
class Pressure:
    some: PressureLine
    full: PressureLine | None = None


@dataclass(frozen=True)
class CgroupStats:
    cpu: CpuStats = CpuStats()
    memory: MemoryStats = MemoryStats()
    pids: PidsStats = PidsStats()
    # Per block device, sorted by (major, minor); None when no io/blkio file exists.
    io: tuple[DeviceIO, ...] | None = None
    # PSI exists on cgroup v2 only.
    cpu_pressure: Pressure | None = None
    memory_pressure: Pressure | None = None
    io_pressure: Pressure | None = None


def parse_int(text: str | None) -> int | None:
    return None if text is None else int(text.strip())


def parse_limit(text: str | None) -> int | None:
    """A limit file ("max", a v1 near-2^63 value, or a number) -> bytes/count, None if none."""
    if text is None or text.strip() == "max":
        return None
    value = int(text.strip())
    return None if value >= _V1_UNLIMITED_FROM else value


def parse_flat_keyed(text: str | None, keys: Collection[str] | None = None) -> dict[str, int]:
    """"key value" per line (memory.stat, cpu.stat, memory.events, memory.oom_control); only
    ``keys`` when given (memory.stat has ~40 lines, a scrape wants ~10 of them)."""
    words = (text or "").split()
    if len(words) == 2 * (text or "").count("\n"):  # the usual shape, parsed in one go (scrapes)
        if keys is None:
            return dict(zip(words[::2], map(int, words[1::2])))
        found = dict(zip(words[::2], words[1::2]))
        return {k: int(found[k]) for k in keys if k in found}
    result = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value and (keys is None or key in keys):
            result[key] = int(value)
    return result


def parse_nested_keyed(text: str) -> dict[str, dict[str, str]]:
    """"key k=v k=v" per line (io.stat, *.pressure)."""
    result = {}
    for line in text.splitlines():
        key, *pairs = line.split()
        result[key] = dict(pair.split("=", 1) for pair in pairs)
    return result


def _device(key: str) -> tuple[int, int]:
    major, minor = key.split(":")
    return int(major), int(minor)


def parse_blkio(
    service_bytes: str | None, serviced: str | None
) -> tuple[DeviceIO, ...] | None:
    """v1 blkio.throttle.io_service_bytes + io_serviced: "M:m Read N" lines and a "Total N"."""
    if service_bytes is None and serviced is None:
        return None
    fields = {("Read", True): "read_bytes", ("Write", True): "write_bytes",
              ("Read", False): "read_ops", ("Write", False): "write_ops"}
    devices: dict[tuple[int, int], dict[str, int]] = {}
    for text, is_bytes in ((service_bytes, True), (serviced, False)):
        for line in (text or "").splitlines():
            parts = line.split()
            if len(parts) != 3 or (parts[1], is_bytes) not in fields:
                continue  # "Total N", and the Sync/Async/Discard/Total per-device lines
            devices.setdefault(_device(parts[0]), {})[fields[parts[1], is_bytes]] = int(parts[2])
    return tuple(DeviceIO(*dev, **counts) for dev, counts in sorted(devices.items()))


def parse_io_stat(text: str | None) -> tuple[DeviceIO, ...] | None:
    """v2 io.stat: "M:m rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"."""
    if text is None:
        return None
    devices = []
    for key, kv in parse_nested_keyed(text).items():
        devices.append(DeviceIO(
            *_device(key),
            read_bytes=int(kv.get("rbytes", 0)), write_bytes=int(kv.get("wbytes", 0)),
            read_ops=int(kv.get("rios", 0)), write_ops=int(kv.get("wios", 0)),
        ))
    return tuple(sorted(devices, key=lambda d: (d.major, d.minor)))


def parse_pressure(text: str | None) -> Pressure | None:
    """PSI: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and, mostly, a "full" line."""
    if not text:
        return None
    lines = {
        kind: PressureLine(float(kv["avg10"]), float(kv["avg60"]), float(kv["avg300"]),
                           int(kv["total"]))
        for kind, kv in parse_nested_keyed(text).items()
    }
    if "some" not in lines:
        return None
    return Pressure(some=lines["some"], full=lines.get("full"))


def working_set(usage: int | None, inactive_file: int | None) -> int | None:
    if usage is None:
        return None
    # Like cAdvisor: without inactive_file all of usage counts as working set.
    return max(usage - (inactive_file or 0), 0)
