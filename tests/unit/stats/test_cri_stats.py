"""The CRI stats and metrics RPCs on the fake trees: conversion of samples to CRI messages,
filters, usage_nano_cores across calls, and agreement with the Prometheus families."""
from __future__ import annotations

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.stats import StatsRpcs, metric_descriptors, network_usage
from metrics.families import FAMILIES
from runtime.errors import NotFound
from runtime.ids import resolve
from runtime.stats.cpurate import CpuRate
from runtime.stats.sample import Interface, Labels, Sample
from tests.unit.stats.builders import APP, BATCH, INIT, SIDE, STOPPED, WEB, WORKER, reader, scene


class Manager:
    def __init__(self, records: list, kind: str) -> None:
        self.records = {r.id: r for r in records}
        self.kind = kind

    def get(self, record_id: str):  # noqa: ANN201
        return self.records[resolve(record_id, list(self.records), self.kind)]

    def find(self, record_id: str):  # noqa: ANN201
        try:
            return self.get(record_id)
        except NotFound:
            return None

    def list(self) -> list:
        return list(self.records.values())


class Service(StatsRpcs):
    def __init__(self, version: str = "v1", clock: list[int] | None = None) -> None:
        sandboxes, containers = scene(version)
        self.sandboxes = Manager(sandboxes, "sandbox")
        self.containers = Manager(containers, "container")
        self.clock = clock or [1_700_000_000 * 10**9]
        self.stats_reader = reader(version)
        self.stats_reader._clock = lambda: self.clock[0]  # noqa: SLF001 - a moving clock for rates
        self.cpu_rates = CpuRate()


def test_container_stats_carries_cgroup_memory_layer_and_attributes() -> None:
    stats = Service().ContainerStats(pb.ContainerStatsRequest(container_id=APP)).stats
    assert stats.attributes.id == APP and stats.attributes.metadata.name == "app"
    assert stats.attributes.labels == {"tier": "app"}
    assert stats.cpu.timestamp and stats.cpu.usage_core_nano_seconds.value == 3_000_000_000
    assert not stats.cpu.HasField("usage_nano_cores")  # no earlier sample yet
    m = stats.memory
    assert (m.working_set_bytes.value, m.usage_bytes.value, m.rss_bytes.value) == (117_440_512, 134_217_728,
                                                                                   92_274_688)
    assert m.available_bytes.value == 268_435_456 - 117_440_512
    assert (m.page_faults.value, m.major_page_faults.value) == (90_000, 40)
    assert stats.writable_layer.fs_id.mountpoint.endswith(APP + "/upper")
    assert stats.writable_layer.used_bytes.value and stats.writable_layer.inodes_used.value
    assert stats.swap.swap_usage_bytes.value == 0 and not stats.swap.HasField("swap_available_bytes")
    assert not stats.cpu.HasField("psi")  # cgroup v1


def test_v2_carries_pressure() -> None:
    stats = Service("v2").ContainerStats(pb.ContainerStatsRequest(container_id=APP)).stats
    assert stats.cpu.psi.Some.Total == 2_400_000 and stats.cpu.psi.Full.Total == 950_000
    assert stats.cpu.psi.Some.Avg10 == pytest.approx(0.5)
    assert stats.memory.psi.Full.Total == 20_000 and stats.io.psi.Some.Total == 480_000


def test_a_container_without_a_limit_has_no_available_bytes_and_an_exited_one_no_usage() -> None:
    service = Service()
    side = service.ContainerStats(pb.ContainerStatsRequest(container_id=SIDE)).stats
    assert not side.memory.HasField("available_bytes")
    init = service.ContainerStats(pb.ContainerStatsRequest(container_id=INIT)).stats
    assert init.cpu.timestamp and init.memory.timestamp  # critest wants them even then
    assert not init.cpu.HasField("usage_core_nano_seconds") and not init.memory.HasField("working_set_bytes")


def test_unknown_container_is_not_found() -> None:
    with pytest.raises(NotFound):
        Service().ContainerStats(pb.ContainerStatsRequest(container_id="f" * 64))


def test_usage_nano_cores_comes_from_the_previous_sample() -> None:
    service = Service()
    service.ListContainerStats(pb.ListContainerStatsRequest())
    # The fake cgroup does not move, so the rate is 0 once there is a previous sample.
    service.clock[0] += 10 * 10**9
    stats = service.ListContainerStats(pb.ListContainerStatsRequest()).stats
    running = [s for s in stats if s.attributes.id in (APP, SIDE, WORKER)]
    assert running and all(s.cpu.HasField("usage_nano_cores") and s.cpu.usage_nano_cores.value == 0
                           for s in running)


@pytest.mark.parametrize("f, expected", [
    (pb.ContainerStatsFilter(), {APP, SIDE, INIT, WORKER}),
    (pb.ContainerStatsFilter(id=APP[:8]), {APP, SIDE, INIT}),  # an id prefix matches every c0ffee…
    (pb.ContainerStatsFilter(id=WORKER), {WORKER}),
    (pb.ContainerStatsFilter(pod_sandbox_id=BATCH[:5]), {WORKER}),
    (pb.ContainerStatsFilter(label_selector={"tier": "sidecar"}), {SIDE}),
    (pb.ContainerStatsFilter(label_selector={"tier": "nope"}), set()),
])
def test_list_container_stats_filters(f: pb.ContainerStatsFilter, expected: set) -> None:
    stats = Service().ListContainerStats(pb.ListContainerStatsRequest(filter=f)).stats
    assert {s.attributes.id for s in stats} == expected


def test_stream_container_stats_sends_the_same_in_batches() -> None:
    service = Service()
    streamed = [s.attributes.id for r in service.StreamContainerStats(pb.StreamContainerStatsRequest())
                for s in r.container_stats]
    assert streamed == [s.attributes.id for s in service.ListContainerStats(pb.ListContainerStatsRequest()).stats]


def test_pod_sandbox_stats_of_a_pod_with_its_cgroup() -> None:
    stats = Service().PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=WEB)).stats
    assert stats.attributes.id == WEB and stats.attributes.metadata.name == "web-0"
    assert stats.attributes.metadata.namespace == "shop" and stats.attributes.labels == {"app": "web-0"}
    linux = stats.linux
    assert linux.cpu.usage_core_nano_seconds.value == 3_250_000_000
    assert linux.memory.working_set_bytes.value == 150_994_944 - 20_971_520
    assert linux.process.process_count.value == 3
    assert linux.network.default_interface.name == "eth0"
    assert linux.network.default_interface.rx_bytes.value == 5_243_880
    assert linux.network.default_interface.tx_errors.value == 0
    assert [c.attributes.metadata.name for c in linux.containers] == ["app", "sidecar", "init"]
    assert not stats.HasField("windows")


def test_list_pod_sandbox_stats_filters_and_streams() -> None:
    service = Service()
    every = service.ListPodSandboxStats(pb.ListPodSandboxStatsRequest()).stats
    assert [s.attributes.id for s in every] == [BATCH, WEB, STOPPED]  # by creation
    stopped = every[2]
    assert not stopped.linux.HasField("network") and not stopped.linux.cpu.HasField("usage_core_nano_seconds")
    f = pb.PodSandboxStatsFilter(label_selector={"app": "batch-1"})
    assert [s.attributes.id for s in service.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(filter=f)).stats] \
        == [BATCH]
    streamed = [s.attributes.id for r in service.StreamPodSandboxStats(pb.StreamPodSandboxStatsRequest())
                for s in r.pod_sandbox_stats]
    assert streamed == [BATCH, WEB, STOPPED]


def test_descriptors_are_the_family_table() -> None:
    descriptors = Service().ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors
    assert [d.name for d in descriptors] == [f.name for f in FAMILIES]
    usage = next(d for d in descriptors if d.name == "container_cpu_usage_seconds_total")
    assert list(usage.label_keys) == ["id", "name", "image", "pod", "namespace", "container", "cpu"]
    assert usage.help == "Cumulative cpu time consumed in seconds."


def test_pod_metrics_match_the_descriptors_and_the_stats() -> None:
    service = Service()
    keys = {d.name: len(d.label_keys) for d in metric_descriptors()}
    pods = service.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
    assert [p.pod_sandbox_id for p in pods] == [BATCH, WEB]  # ready pods only
    web = pods[1]
    assert [c.container_id for c in web.container_metrics] == [APP, SIDE]  # running containers only
    for metric in [*web.metrics, *(m for c in web.container_metrics for m in c.metrics)]:
        assert len(metric.label_values) == keys[metric.name], metric
    app = {m.name: m for m in web.container_metrics[0].metrics}
    ws = app["container_memory_working_set_bytes"]
    stats = service.ContainerStats(pb.ContainerStatsRequest(container_id=APP)).stats
    assert ws.value.value == stats.memory.working_set_bytes.value and ws.metric_type == pb.GAUGE
    assert ws.label_values[0].endswith("/" + APP)
    assert list(ws.label_values[1:]) == [APP, "docker.io/library/nginx:1.25", "web-0", "shop", "app"]
    usage = app["container_cpu_usage_seconds_total"]
    assert usage.metric_type == pb.COUNTER and usage.value.value == 3 and usage.label_values[-1] == "total"
    assert app["container_memory_failcnt"].metric_type == pb.COUNTER
    assert ws.timestamp == 0
    eth0 = [m for m in web.metrics if m.name == "container_network_receive_bytes_total"]
    assert [(m.label_values[-1], m.value.value) for m in eth0] == [("eth0", 5_243_880)]
    streamed = [p.pod_sandbox_id for r in service.StreamPodSandboxMetrics(pb.StreamPodSandboxMetricsRequest())
                for p in r.pod_sandbox_metrics]
    assert streamed == [BATCH, WEB]


def test_a_pod_without_interfaces_reports_no_network_rather_than_one_without_a_default() -> None:
    """A pod whose network is being set up or torn down has no interface yet or any more: a
    NetworkUsage without default_interface made the kubelet's stats provider dereference nil and
    crash (seen in the cluster tests)."""
    pod = Sample(timestamp_ns=1, labels=Labels(pod="web"), start_time_ns=0, network=())
    assert network_usage(pod) is None
    with_one = Sample(timestamp_ns=1, labels=Labels(pod="web"), start_time_ns=0, network=(Interface("net1", 5),))
    usage = network_usage(with_one)
    assert usage is not None and usage.default_interface.name == "net1" and usage.default_interface.rx_bytes.value == 5
