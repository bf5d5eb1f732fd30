"""Resources on pycrid as a cluster's users see them: limits land in the container's cgroup; usage
reaches `kubectl top` (metrics-server, from the kubelet's /metrics/resource), /stats/summary (with
network stats: the cluster's kubelet takes pod stats from pycrid, PodAndContainerStatsFromCRI), and
Prometheus, which found the node through the apiserver and scrapes pycrid's /metrics on it."""
from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.cgroups.manager import detect
from tests.cluster import cgroup_files, prometheus
from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually
from tests.cluster.layout import NODE_NAME

BURN = ["sh", "-c", "while true; do i=$((i+1)); done"]
LIMITS = {"limits": {"cpu": "200m", "memory": "100Mi"}, "requests": {"cpu": "100m", "memory": "50Mi"}}


@pytest.fixture(scope="module", autouse=True)
def busy(cluster: Cluster, namespace: str) -> str:
    """A pod that burns its 200m of CPU, for every test to find usage of."""
    cluster.apply(m.pod(namespace, "busy", m.container("burn", BURN, resources=LIMITS)))
    cluster.wait_ready(namespace, "pod/busy")
    return "busy"


def test_limits_are_in_the_containers_cgroup(cluster: Cluster, namespace: str) -> None:
    """Read inside the container (its own cgroup is what it sees at /sys/fs/cgroup) and on the node."""
    version = detect()
    files = cgroup_files.expected(version, cpu_limit_milli=200, memory_limit=100 << 20, cpu_request_milli=100)
    inside = cluster.kubectl("-n", namespace, "exec", "busy", "--", "cat",
                             *(f"/sys/fs/cgroup/{name}" for name in files)).stdout.split("\n")
    assert dict(zip(files, inside)) == files
    on_node = cgroup_files.container_cgroup(cluster, namespace, "busy")
    assert cgroup_files.read_on_node(version, on_node, list(files)) == files


def test_kubectl_top_pod(cluster: Cluster, namespace: str) -> None:
    def top_cpu() -> int | None:
        done = cluster.kubectl("-n", namespace, "top", "pod", "busy", "--no-headers", check=False)
        if done.returncode != 0:
            return None
        _, cpu, memory = done.stdout.split()
        assert memory.endswith("Mi"), done.stdout
        return int(cpu.removesuffix("m"))
    cpu = eventually("kubectl top pod busy", top_cpu, 120, cluster.diagnosis, interval=2)
    # It burns up to its 200m limit: less on a busy machine (its request is 100m), never much more;
    # an idle pod reads 0-1m.
    assert 20 <= cpu <= 260, f"busy burns its CPU up to a 200m limit; top says {cpu}m"
    # top rounds memory down to Mi; the resource metrics API behind it has the Ki.
    metrics = json.loads(cluster.kubectl("get", "--raw",
                                         f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/busy").stdout)
    usage = metrics["containers"][0]["usage"]
    assert usage["memory"].endswith("Ki") and int(usage["memory"].removesuffix("Ki")) > 0, usage
    nodes = cluster.kubectl("top", "node", "--no-headers").stdout.split()
    assert nodes[0] == NODE_NAME and int(nodes[1].removesuffix("m")) > 0, nodes


def stats_of(summary: dict[str, Any], namespace: str, name: str) -> dict[str, Any] | None:
    return next((p for p in summary["pods"]
                 if (p["podRef"]["namespace"], p["podRef"]["name"]) == (namespace, name)), None)


def missing_stats(pod: dict[str, Any] | None) -> list[str]:
    """What of CPU, memory and network the pod's /stats/summary entry lacks."""
    if pod is None:
        return ["the pod"]
    lacking = []
    for entry in (pod, *pod.get("containers", ())):
        label = entry.get("name", "pod")
        if not entry.get("cpu", {}).get("usageCoreNanoSeconds"):
            lacking.append(f"{label} cpu")
        if not entry.get("memory", {}).get("workingSetBytes"):
            lacking.append(f"{label} memory")
    interfaces = {i["name"]: i for i in pod.get("network", {}).get("interfaces", ())}
    if interfaces.get("eth0", {}).get("rxBytes") is None:
        lacking.append("network eth0")
    return lacking


def test_stats_summary_has_cpu_memory_and_network_for_every_pod(cluster: Cluster) -> None:
    gaps: dict[str, list[str]] = {}

    def complete() -> dict[str, Any] | None:
        running = [p for p in cluster.get("pods", "-A", f"--field-selector=spec.nodeName={NODE_NAME},"
                                          "status.phase=Running")["items"]
                   if p["metadata"].get("deletionTimestamp") is None]
        summary = json.loads(cluster.kubectl("get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/stats/summary").stdout)
        gaps.clear()
        for p in running:
            namespace, name = p["metadata"]["namespace"], p["metadata"]["name"]
            if lacking := missing_stats(stats_of(summary, namespace, name)):
                gaps[f"{namespace}/{name}"] = lacking
        return summary if running and not gaps else None
    summary = eventually("CPU, memory and network of every running pod in /stats/summary", complete, 60,
                         lambda: f"missing: {gaps}")
    assert summary["node"]["nodeName"] == NODE_NAME


def promql(cluster: Cluster, query: str) -> list[dict[str, Any]] | None:
    done = cluster.inside("curl", "-sS", "--max-time", "10", prometheus.query_url(cluster.layout, query))
    if done.returncode != 0:
        return None
    answer = json.loads(done.stdout)
    assert answer["status"] == "success", answer
    return answer["data"]["result"] or None


@pytest.mark.parametrize("metric", ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes"])
@pytest.mark.parametrize("job", ["pycrid", "kubelet-resource"])
def test_prometheus_has_the_pods_usage(cluster: Cluster, namespace: str, metric: str, job: str) -> None:
    query = f'sum by (namespace, pod) ({metric}{{job="{job}", namespace="{namespace}", pod="busy"}})'
    result = eventually(f"{query} in Prometheus", lambda: promql(cluster, query), 60,
                        lambda: cluster.inside("curl", "-s", f"{cluster.layout.prometheus}/api/v1/targets").stdout,
                        interval=2)
    assert [r["metric"] for r in result] == [{"namespace": namespace, "pod": "busy"}]
    assert float(result[0]["value"][1]) > 0, result
