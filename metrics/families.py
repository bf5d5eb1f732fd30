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

from runtime.cgroups.stats import Pressure
from runtime.stats.sample import Sample

BASE_LABELS = ("id", "name", "image", "pod", "namespace", "container")
Values = Iterable[tuple[tuple[str, ...], float]]
_NS = 1e9
_US = 1e6


@dataclass(frozen=True)
class Family:
    name: str  # the series name, as cAdvisor's (counters end in _total)
    help: str
    type: str  # "counter" | "gauge" | "unknown"
    values: Callable[[Sample], Values]
    extra_labels: tuple[str, ...] = ()

    @property
    def label_names(self) -> tuple[str, ...]:
        return BASE_LABELS + self.extra_labels


def _one(value: float | None, scale: float = 1.0) -> Values:
    if value is None:
        return ()
    return (((), value if scale == 1.0 else value / scale),)  # ints stay ints: they print faster


def _cpu(field: str, scale: float = 1.0, throttling: bool = False) -> Callable[[Sample], Values]:
    def values(s: Sample) -> Values:
        if throttling and not s.spec.cpu_quota:  # cAdvisor: CFS series only with a quota
            return ()
        return _one(getattr(s.cgroup.cpu, field), scale)
    return values


def _memory(field: str) -> Callable[[Sample], Values]:
    return lambda s: _one(getattr(s.cgroup.memory, field))


def _failures(s: Sample) -> Values:
    m = s.cgroup.memory
    for kind, scope, value in (("pgfault", "container", m.local_pgfault),
                               ("pgmajfault", "container", m.local_pgmajfault),
                               ("pgfault", "hierarchy", m.pgfault), ("pgmajfault", "hierarchy", m.pgmajfault)):
        if value is not None:
            yield (kind, scope), value


def _io(field: str) -> Callable[[Sample], Values]:
    return lambda s: (((d.device,), getattr(d.io, field)) for d in s.io)


def _net(field: str) -> Callable[[Sample], Values]:
    return lambda s: (((i.name,), getattr(i, field)) for i in s.network or ())


def _layer(field: str) -> Callable[[Sample], Values]:
    def values(s: Sample) -> Values:
        fs = s.writable_layer
        return () if fs is None else (((fs.device,), getattr(fs, field)),)
    return values


def _processes(field: str) -> Callable[[Sample], Values]:
    return lambda s: () if s.processes is None else (((), getattr(s.processes, field)),)


def _pressure(resource: str, line: str) -> Callable[[Sample], Values]:
    def values(s: Sample) -> Values:
        p: Pressure | None = getattr(s.cgroup, f"{resource}_pressure")
        psi = None if p is None else (p.full if line == "full" else p.some)
        return () if psi is None else (((), psi.total_us / _US),)
    return values


def _spec(field: str, only_if_set: bool = False) -> Callable[[Sample], Values]:
    def values(s: Sample) -> Values:
        value = getattr(s.spec, field)
        return () if only_if_set and not value else (((), value),)
    return values


def _threads_max(s: Sample) -> Values:
    if s.processes is None:
        return ()
    return (((), s.cgroup.pids.limit or 0),)  # 0: no limit, as cAdvisor prints it


def _pressure_families() -> list[Family]:
    out = []
    for resource, word in (("cpu", "CPU"), ("memory", "memory"), ("io", "IO")):
        out.append(Family(
            f"container_pressure_{resource}_stalled_seconds_total",
            f"Total time duration no tasks in the container could make progress due to {word} congestion.",
            "counter", _pressure(resource, "full")))
        out.append(Family(
            f"container_pressure_{resource}_waiting_seconds_total",
            f"Total time duration tasks in the container have waited due to {word} congestion.",
            "counter", _pressure(resource, "some")))
    return out


FAMILIES: tuple[Family, ...] = (
    Family("container_last_seen", "Last time a container was seen by the exporter", "gauge",
           lambda s: (((), s.timestamp_ns // 1_000_000_000),)),
    Family("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge",
           lambda s: (((), s.start_time_ns // 1_000_000_000),)),
    # cpu
    Family("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter",
           _cpu("user_ns", _NS)),
    Family("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter",
           _cpu("system_ns", _NS)),
    Family("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter",
           lambda s: ((("total",), v) for (_, v) in _one(s.cgroup.cpu.usage_ns, _NS)), ("cpu",)),
    Family("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter",
           _cpu("nr_periods", throttling=True)),
    Family("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter",
           _cpu("nr_throttled", throttling=True)),
    Family("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
           "counter", _cpu("throttled_ns", _NS, throttling=True)),
    # memory
    Family("container_memory_cache", "Number of bytes of page cache memory.", "gauge", _memory("cache_bytes")),
    Family("container_memory_rss", "Size of RSS in bytes.", "gauge", _memory("rss_bytes")),
    Family("container_memory_mapped_file", "Size of memory mapped files in bytes.", "gauge",
           _memory("mapped_file_bytes")),
    Family("container_memory_swap", "Container swap usage in bytes.", "gauge", _memory("swap_bytes")),
    Family("container_memory_failcnt", "Number of memory usage hits limits", "unknown", _memory("failcnt")),
    Family("container_memory_usage_bytes",
           "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge",
           _memory("usage_bytes")),
    Family("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", "gauge",
           _memory("max_usage_bytes")),
    Family("container_memory_working_set_bytes", "Current working set in bytes.", "gauge",
           _memory("working_set_bytes")),
    Family("container_memory_failures_total", "Cumulative count of memory allocation failures.", "counter",
           _failures, ("failure_type", "scope")),
    Family("container_oom_events_total", "Count of out of memory events observed for the container", "counter",
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
    Family("container_processes", "Number of processes running inside the container.", "gauge",
           _processes("count")),
    Family("container_threads", "Number of threads running inside the container", "gauge", _processes("threads")),
    Family("container_threads_max",
           "Maximum number of threads allowed inside the container, infinity if value is zero", "gauge",
           _threads_max),
    Family("container_file_descriptors", "Number of open file descriptors for the container.", "gauge",
           _processes("fds")),
    Family("container_sockets", "Number of open sockets for the container.", "gauge", _processes("sockets")),
    # spec
    Family("container_spec_cpu_period", "CPU period of the container.", "gauge", _spec("cpu_period")),
    Family("container_spec_cpu_quota", "CPU quota of the container.", "gauge", _spec("cpu_quota", True)),
    Family("container_spec_cpu_shares", "CPU share of the container.", "gauge", _spec("cpu_shares")),
    Family("container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", _spec("memory_limit")),
    Family("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", "gauge",
           _spec("memory_swap_limit")),
    Family("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.",
           "gauge", _spec("memory_reservation")),
    # pressure (cgroup v2)
    *_pressure_families(),
)

BY_NAME = {f.name: f for f in FAMILIES}


def base_values(s: Sample) -> tuple[str, ...]:
    lab = s.labels
    return (lab.id, lab.name, lab.image, lab.pod, lab.namespace, lab.container)
