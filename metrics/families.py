"""The one table of container metric families, named and labelled as cAdvisor serves them at the
kubelet's /metrics/cadvisor. The Prometheus collector (collector.py) and the CRI's
ListMetricDescriptors/ListPodSandboxMetrics (cri/stats.py) are both generated from it.

Every series carries BASE_LABELS (missing = ""), plus the family's extra labels. Each family maps a
usage sample (runtime/stats/sample.py) to (extra label values, value) pairs; values that could not
be read are left out, never reported as 0. Types: counter or gauge, except container_memory_failcnt,
a counter whose name lacks "_total", which OpenMetrics cannot type as a counter: it is "unknown"
(untyped) here, its samples named exactly as cAdvisor's.

Left out on purpose: per-cpu usage (the kubelet disables it too), load average and task states
(always 0 without cAdvisor's netlink load reader, which the kubelet leaves off), ulimits, hugetlb,
the fs read/write timing and merge counters (the cgroup does not keep them). The inodes the
writable layer uses have no cAdvisor family: the CRI's writable_layer.inodes_used carries them;
container_fs_inodes_total/free and container_fs_limit_bytes describe the filesystem holding it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter

from runtime.cgroups.stats import Pressure
from runtime.stats.sample import Sample

BASE_LABELS = ("id", "name", "image", "pod", "namespace", "container")
Values = Iterable[tuple[tuple[str, ...], float]]
_NS = 1e9
_US = 1e6


Value = Callable[[Sample], float | None]


@dataclass(frozen=True)
class Family:
    name: str  # the series name, as cAdvisor's (counters end in _total)
    help: str
    type: str  # "counter" | "gauge" | "unknown"
    values: Callable[[Sample], Values]
    extra_labels: tuple[str, ...] = ()
    # A family of at most one series per sample and no extra labels has its value here too (None:
    # no series); values() then gives the same. The printer takes this shorter way.
    value: Value | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        return BASE_LABELS + self.extra_labels


def _single(name: str, help_text: str, type_: str, value: Value) -> Family:
    def values(s: Sample) -> Values:
        v = value(s)
        return () if v is None else (((), v),)
    return Family(name, help_text, type_, values, value=value)


def _scaled(value: int | None, scale: float) -> float | None:
    # ints stay ints where not scaled: they print faster
    return value if value is None or scale == 1.0 else value / scale


def _cpu(field: str, scale: float = 1.0, throttling: bool = False) -> Value:
    def value(s: Sample) -> float | None:
        if throttling and not s.spec.cpu_quota:  # cAdvisor: CFS series only with a quota
            return None
        return _scaled(getattr(s.cgroup.cpu, field), scale)
    return value


def _memory(field: str) -> Value:
    # attrgetter: the printer calls a value function for every sample of every family
    return attrgetter(f"cgroup.memory.{field}")


def _cpu_total(s: Sample) -> Values:
    usage = s.cgroup.cpu.usage_ns
    return () if usage is None else ((("total",), usage / _NS),)


def _failures(s: Sample) -> Values:
    m = s.cgroup.memory
    for kind, scope, value in (("pgfault", "container", m.local_pgfault),
                               ("pgmajfault", "container", m.local_pgmajfault),
                               ("pgfault", "hierarchy", m.pgfault), ("pgmajfault", "hierarchy", m.pgmajfault)):
        if value is not None:
            yield (kind, scope), value


# () rather than an empty generator where there is nothing: the printer skips () at once, and
# most samples have no block io, and no network but the pods'.
def _io(field: str) -> Callable[[Sample], Values]:
    return lambda s: (((d.device,), getattr(d.io, field)) for d in s.io) if s.io else ()


def _net(field: str) -> Callable[[Sample], Values]:
    return lambda s: (((i.name,), getattr(i, field)) for i in s.network) if s.network else ()


def _layer(field: str) -> Callable[[Sample], Values]:
    def values(s: Sample) -> Values:
        fs = s.writable_layer
        return () if fs is None else (((fs.device,), getattr(fs, field)),)
    return values


def _processes(field: str) -> Value:
    return lambda s: None if s.processes is None else getattr(s.processes, field)


def _pressure(resource: str, line: str) -> Value:
    field = f"{resource}_pressure"

    def value(s: Sample) -> float | None:
        p: Pressure | None = getattr(s.cgroup, field)
        psi = None if p is None else (p.full if line == "full" else p.some)
        return None if psi is None else psi.total_us / _US
    return value


def _spec(field: str, only_if_set: bool = False) -> Value:
    if not only_if_set:
        return attrgetter(f"spec.{field}")

    def value(s: Sample) -> float | None:
        v: int = getattr(s.spec, field)
        return v or None
    return value


def _threads_max(s: Sample) -> float | None:
    if s.processes is None:
        return None
    return s.cgroup.pids.limit or 0  # 0: no limit, as cAdvisor prints it


def _pressure_families() -> list[Family]:
    out = []
    for resource, word in (("cpu", "CPU"), ("memory", "memory"), ("io", "IO")):
        out.append(_single(
            f"container_pressure_{resource}_stalled_seconds_total",
            f"Total time duration no tasks in the container could make progress due to {word} congestion.",
            "counter", _pressure(resource, "full")))
        out.append(_single(
            f"container_pressure_{resource}_waiting_seconds_total",
            f"Total time duration tasks in the container have waited due to {word} congestion.",
            "counter", _pressure(resource, "some")))
    return out


FAMILIES: tuple[Family, ...] = (
    _single("container_last_seen", "Last time a container was seen by the exporter", "gauge",
            lambda s: s.timestamp_ns // 1_000_000_000),
    _single("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge",
            lambda s: s.start_time_ns // 1_000_000_000),
    # cpu
    _single("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter",
            _cpu("user_ns", _NS)),
    _single("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter",
            _cpu("system_ns", _NS)),
    Family("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter",
           _cpu_total, ("cpu",)),
    _single("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter",
            _cpu("nr_periods", throttling=True)),
    _single("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter",
            _cpu("nr_throttled", throttling=True)),
    _single("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
            "counter", _cpu("throttled_ns", _NS, throttling=True)),
    # memory
    _single("container_memory_cache", "Number of bytes of page cache memory.", "gauge", _memory("cache_bytes")),
    _single("container_memory_rss", "Size of RSS in bytes.", "gauge", _memory("rss_bytes")),
    _single("container_memory_mapped_file", "Size of memory mapped files in bytes.", "gauge",
            _memory("mapped_file_bytes")),
    _single("container_memory_swap", "Container swap usage in bytes.", "gauge", _memory("swap_bytes")),
    _single("container_memory_failcnt", "Number of memory usage hits limits", "unknown", _memory("failcnt")),
    _single("container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge",
            _memory("usage_bytes")),
    _single("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", "gauge",
            _memory("max_usage_bytes")),
    _single("container_memory_working_set_bytes", "Current working set in bytes.", "gauge",
            _memory("working_set_bytes")),
    Family("container_memory_failures_total", "Cumulative count of memory allocation failures.", "counter",
           _failures, ("failure_type", "scope")),
    _single("container_oom_events_total", "Count of out of memory events observed for the container", "counter",
            _memory("oom_kills")),
    # writable layer and block io
    Family("container_fs_usage_bytes",
           "Number of bytes that are consumed by the container on this filesystem.", "gauge",
           _layer("used_bytes"), ("device",)),
    Family("container_fs_limit_bytes",
           "Number of bytes that can be consumed by the container on this filesystem.", "gauge",
           _layer("capacity_bytes"), ("device",)),
    Family("container_fs_inodes_total", "Number of Inodes", "gauge", _layer("inodes_total"), ("device",)),
    Family("container_fs_inodes_free", "Number of available Inodes", "gauge", _layer("inodes_free"), ("device",)),
    Family("container_fs_reads_bytes_total", "Cumulative count of bytes read", "counter", _io("read_bytes"),
           ("device",)),
    Family("container_fs_reads_total", "Cumulative count of reads completed", "counter", _io("read_ops"),
           ("device",)),
    Family("container_fs_writes_bytes_total", "Cumulative count of bytes written", "counter", _io("write_bytes"),
           ("device",)),
    Family("container_fs_writes_total", "Cumulative count of writes completed", "counter", _io("write_ops"),
           ("device",)),
    # network (pods: their containers share the pod's namespace)
    Family("container_network_receive_bytes_total", "Cumulative count of bytes received", "counter",
           _net("rx_bytes"), ("interface",)),
    Family("container_network_receive_packets_total", "Cumulative count of packets received", "counter",
           _net("rx_packets"), ("interface",)),
    Family("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving",
           "counter", _net("rx_dropped"), ("interface",)),
    Family("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving",
           "counter", _net("rx_errors"), ("interface",)),
    Family("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "counter",
           _net("tx_bytes"), ("interface",)),
    Family("container_network_transmit_packets_total", "Cumulative count of packets transmitted", "counter",
           _net("tx_packets"), ("interface",)),
    Family("container_network_transmit_packets_dropped_total",
           "Cumulative count of packets dropped while transmitting", "counter", _net("tx_dropped"), ("interface",)),
    Family("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting",
           "counter", _net("tx_errors"), ("interface",)),
    # processes
    _single("container_processes", "Number of processes running inside the container.", "gauge",
            _processes("count")),
    _single("container_threads", "Number of threads running inside the container", "gauge", _processes("threads")),
    _single("container_threads_max",
            "Maximum number of threads allowed inside the container, infinity if value is zero", "gauge",
            _threads_max),
    _single("container_file_descriptors", "Number of open file descriptors for the container.", "gauge",
            _processes("fds")),
    _single("container_sockets", "Number of open sockets for the container.", "gauge", _processes("sockets")),
    # spec
    _single("container_spec_cpu_period", "CPU period of the container.", "gauge", _spec("cpu_period")),
    _single("container_spec_cpu_quota", "CPU quota of the container.", "gauge", _spec("cpu_quota", True)),
    _single("container_spec_cpu_shares", "CPU share of the container.", "gauge", _spec("cpu_shares")),
    _single("container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", _spec("memory_limit")),
    _single("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", "gauge",
            _spec("memory_swap_limit")),
    _single("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.",
            "gauge", _spec("memory_reservation")),
    # pressure (cgroup v2)
    *_pressure_families(),
)

BY_NAME = {f.name: f for f in FAMILIES}


def base_values(s: Sample) -> tuple[str, ...]:
    lab = s.labels
    return (lab.id, lab.name, lab.image, lab.pod, lab.namespace, lab.container)
