"""ContainerStats, ListContainerStats, StreamContainerStats, PodSandboxStats, ListPodSandboxStats,
StreamPodSandboxStats, ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics.

All read the samples of runtime/stats (the readers the Prometheus exporter uses), and the metric
RPCs are generated from the exporter's family table (metrics/families.py): what the kubelet gets
over the CRI and what Prometheus scrapes never disagree. usage_nano_cores comes from the previous
sample of the same container or pod (runtime/stats/cpurate.py).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from cri.api.v1 import api_pb2 as pb
from cri.filters import id_matches, matches
from cri.managers import Containers
from cri.streams import batches
from metrics.families import FAMILIES, base_values
from metrics.pods import read_pods
from runtime.cgroups.stats import Pressure
from runtime.container.record import Container
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.record import Sandbox
from runtime.stats.cpurate import CpuRate
from runtime.stats.reader import StatsReader
from runtime.stats.sample import Interface, Sample

# The CRI's Metric has no unknown type; cAdvisor's one untyped family (failcnt) is a counter.
_METRIC_TYPE = {"counter": pb.COUNTER, "gauge": pb.GAUGE, "unknown": pb.COUNTER}
DEFAULT_INTERFACE = "eth0"


class StatsRpcs:
    sandboxes: SandboxManager
    containers: Containers
    stats_reader: StatsReader
    cpu_rates: CpuRate

    # --- containers --------------------------------------------------------------------------
    def ContainerStats(self, request: pb.ContainerStatsRequest) -> pb.ContainerStatsResponse:
        c = self.containers.get(request.container_id)
        sample = self.stats_reader.container(c, self.sandboxes.find(c.sandbox_id))
        return pb.ContainerStatsResponse(stats=self._container_stats(c, sample))

    def ListContainerStats(self, request: pb.ListContainerStatsRequest) -> pb.ListContainerStatsResponse:
        return pb.ListContainerStatsResponse(stats=self._list_container_stats(request.filter))

    def StreamContainerStats(self, request: pb.StreamContainerStatsRequest
                             ) -> Iterator[pb.StreamContainerStatsResponse]:
        for batch in batches(self._list_container_stats(request.filter)):
            yield pb.StreamContainerStatsResponse(container_stats=batch)

    # --- pods ----------------------------------------------------------------------------------
    def PodSandboxStats(self, request: pb.PodSandboxStatsRequest) -> pb.PodSandboxStatsResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        containers = [c for c in self.containers.list() if c.sandbox_id == sandbox.id]
        return pb.PodSandboxStatsResponse(stats=self._pod_stats(sandbox, containers))

    def ListPodSandboxStats(self, request: pb.ListPodSandboxStatsRequest) -> pb.ListPodSandboxStatsResponse:
        return pb.ListPodSandboxStatsResponse(stats=self._list_pod_stats(request.filter))

    def StreamPodSandboxStats(self, request: pb.StreamPodSandboxStatsRequest
                              ) -> Iterator[pb.StreamPodSandboxStatsResponse]:
        for batch in batches(self._list_pod_stats(request.filter)):
            yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=batch)

    # --- metrics -------------------------------------------------------------------------------
    def ListMetricDescriptors(self, request: pb.ListMetricDescriptorsRequest) -> pb.ListMetricDescriptorsResponse:
        return pb.ListMetricDescriptorsResponse(descriptors=metric_descriptors())

    def ListPodSandboxMetrics(self, request: pb.ListPodSandboxMetricsRequest) -> pb.ListPodSandboxMetricsResponse:
        return pb.ListPodSandboxMetricsResponse(pod_metrics=self._pod_metrics())

    def StreamPodSandboxMetrics(self, request: pb.StreamPodSandboxMetricsRequest
                                ) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
        for batch in batches(self._pod_metrics()):
            yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=batch)

    # --- helpers -------------------------------------------------------------------------------
    def _list_container_stats(self, f: pb.ContainerStatsFilter) -> list[pb.ContainerStats]:
        containers = sorted(self.containers.list(), key=lambda c: c.created_at)
        sandboxes = {s.id: s for s in self.sandboxes.list()}
        self.cpu_rates.retain([c.id for c in containers] + list(sandboxes))
        wanted = [c for c in containers if id_matches(c.id, f.id) and id_matches(c.sandbox_id, f.pod_sandbox_id)
                  and matches(c.config.labels, f.label_selector)]
        return [self._container_stats(c, self.stats_reader.container(c, sandboxes.get(c.sandbox_id)))
                for c in wanted]

    def _list_pod_stats(self, f: pb.PodSandboxStatsFilter) -> list[pb.PodSandboxStats]:
        containers = sorted(self.containers.list(), key=lambda c: c.created_at)
        sandboxes = sorted(self.sandboxes.list(), key=lambda s: s.created_at)
        self.cpu_rates.retain([c.id for c in containers] + [s.id for s in sandboxes])
        return [self._pod_stats(s, [c for c in containers if c.sandbox_id == s.id]) for s in sandboxes
                if id_matches(s.id, f.id) and matches(s.config.labels, f.label_selector)]

    def _container_stats(self, c: Container, sample: Sample) -> pb.ContainerStats:
        rate = self.cpu_rates.observe(c.id, sample.timestamp_ns, sample.cgroup.cpu.usage_ns)
        return container_stats(c, sample, rate)

    def _pod_stats(self, sandbox: Sandbox, containers: Sequence[Container]) -> pb.PodSandboxStats:
        pod = self.stats_reader.pod(sandbox, containers)
        s = pod.pod
        rate = self.cpu_rates.observe(sandbox.id, s.timestamp_ns, s.cgroup.cpu.usage_ns)
        c = sandbox.config
        return pb.PodSandboxStats(
            attributes=pb.PodSandboxAttributes(
                id=sandbox.id, labels=c.labels, annotations=c.annotations,
                metadata=pb.PodSandboxMetadata(name=c.name, uid=c.uid, namespace=c.namespace, attempt=c.attempt)),
            linux=pb.LinuxPodSandboxStats(
                cpu=cpu_usage(s, rate), memory=memory_usage(s), network=network_usage(s),
                process=pb.ProcessUsage(timestamp=s.timestamp_ns,
                                        process_count=_u(s.processes.count if s.processes else None)),
                containers=[self._container_stats(rec, cs) for rec, cs in zip(containers, pod.containers)],
                io=pb.IoUsage(timestamp=s.timestamp_ns, psi=psi(s.cgroup.io_pressure))))

    def _pod_metrics(self) -> list[pb.PodSandboxMetrics]:
        pods, _ = read_pods(self.sandboxes.list(), self.containers.list(), self.stats_reader)
        return [pb.PodSandboxMetrics(pod_sandbox_id=sandbox.id, metrics=metrics_of(pod.pod),
                                     container_metrics=[pb.ContainerMetrics(container_id=s.labels.name,
                                                                            metrics=metrics_of(s))
                                                        for s in pod.containers])
                for sandbox, pod in pods]


# --- conversions (pure) ------------------------------------------------------------------------

def _u(value: int | None) -> pb.UInt64Value | None:
    return None if value is None else pb.UInt64Value(value=max(int(value), 0))


def psi(p: Pressure | None) -> pb.PsiStats | None:
    if p is None:
        return None
    full = p.full
    return pb.PsiStats(
        Some=pb.PsiData(Total=p.some.total_us, Avg10=p.some.avg10, Avg60=p.some.avg60, Avg300=p.some.avg300),
        Full=pb.PsiData(Total=full.total_us, Avg10=full.avg10, Avg60=full.avg60, Avg300=full.avg300)
        if full else None)


def cpu_usage(s: Sample, nano_cores: int | None) -> pb.CpuUsage:
    return pb.CpuUsage(timestamp=s.timestamp_ns, usage_core_nano_seconds=_u(s.cgroup.cpu.usage_ns),
                       usage_nano_cores=_u(nano_cores), psi=psi(s.cgroup.cpu_pressure))


def memory_usage(s: Sample) -> pb.MemoryUsage:
    m = s.cgroup.memory
    available = None
    if m.limit_bytes is not None and m.working_set_bytes is not None:
        available = max(m.limit_bytes - m.working_set_bytes, 0)
    return pb.MemoryUsage(timestamp=s.timestamp_ns, working_set_bytes=_u(m.working_set_bytes),
                          available_bytes=_u(available), usage_bytes=_u(m.usage_bytes), rss_bytes=_u(m.rss_bytes),
                          page_faults=_u(m.pgfault), major_page_faults=_u(m.pgmajfault),
                          psi=psi(s.cgroup.memory_pressure))


def swap_usage(s: Sample) -> pb.SwapUsage:
    used = s.cgroup.memory.swap_bytes
    available = None
    # The CRI's swap limit is memory + swap (v1's memsw); what is left of the swap part is available.
    if used is not None and s.spec.memory_swap_limit and s.spec.memory_limit:
        available = max(s.spec.memory_swap_limit - s.spec.memory_limit - used, 0)
    return pb.SwapUsage(timestamp=s.timestamp_ns, swap_usage_bytes=_u(used), swap_available_bytes=_u(available))


def _interface(i: Interface) -> pb.NetworkInterfaceUsage:
    return pb.NetworkInterfaceUsage(name=i.name, rx_bytes=_u(i.rx_bytes), rx_errors=_u(i.rx_errors),
                                    tx_bytes=_u(i.tx_bytes), tx_errors=_u(i.tx_errors))


def network_usage(s: Sample) -> pb.NetworkUsage | None:
    """None when the pod has no interface to report (its network being set up or torn down): the
    kubelet reads default_interface whenever network is set, and a nil one crashes it (v1.36)."""
    if not s.network:
        return None
    interfaces = [_interface(i) for i in s.network]
    default = next((i for i in interfaces if i.name == DEFAULT_INTERFACE), interfaces[0] if interfaces else None)
    return pb.NetworkUsage(timestamp=s.timestamp_ns, default_interface=default, interfaces=interfaces)


def container_stats(c: Container, s: Sample, nano_cores: int | None) -> pb.ContainerStats:
    fs = s.writable_layer
    return pb.ContainerStats(
        attributes=pb.ContainerAttributes(
            id=c.id, metadata=pb.ContainerMetadata(name=c.config.name, attempt=c.config.attempt),
            labels=c.config.labels, annotations=c.config.annotations),
        cpu=cpu_usage(s, nano_cores), memory=memory_usage(s), swap=swap_usage(s),
        writable_layer=None if fs is None else pb.FilesystemUsage(
            timestamp=s.timestamp_ns, fs_id=pb.FilesystemIdentifier(mountpoint=fs.mountpoint),
            used_bytes=_u(fs.used_bytes), inodes_used=_u(fs.inodes_used)),
        io=pb.IoUsage(timestamp=s.timestamp_ns, psi=psi(s.cgroup.io_pressure)))


def metric_descriptors() -> list[pb.MetricDescriptor]:
    return [pb.MetricDescriptor(name=f.name, help=f.help, label_keys=f.label_names) for f in FAMILIES]


def metrics_of(s: Sample) -> list[pb.Metric]:
    """One sample as CRI Metrics, label values in the descriptor's label_keys order. The CRI
    carries integers: values in seconds are truncated to whole seconds (as CRI-O does). No
    timestamp: the values are read on request (the kubelet then exports them without one)."""
    base = base_values(s)
    return [pb.Metric(name=f.name, metric_type=_METRIC_TYPE[f.type], label_values=base + extra,
                      value=pb.UInt64Value(value=max(int(value), 0)))
            for f in FAMILIES for extra, value in f.values(s)]
