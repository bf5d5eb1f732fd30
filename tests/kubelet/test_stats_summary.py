"""The kubelet's /stats/summary for a pod on pycrid, with its default settings and with the feature
gate the cluster (hack/cluster) turns on. By default the kubelet takes pod network stats from its
built-in cAdvisor, which recognises only containerd's, CRI-O's and docker's containers (by their
labels): a pod on pycrid gets CPU and memory (from pycrid's ListContainerStats) but no network.
With PodAndContainerStatsFromCRI it takes all of them from pycrid (ListPodSandboxStats), network
included. This test pins both, so a kubelet that changes either shows up here."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon
from tests.kubelet.conftest import running_kubelet
from tests.kubelet.pods import pod_in, running, wait_for

GATE = "PodAndContainerStatsFromCRI"
# Some traffic on the pod's eth0 (to its own gateway), so there are bytes to count.
TRAFFIC = "ping -c 3 -W 1 $(ip route | awk '/default/ {print $3}') >/dev/null 2>&1; sleep 3600"


def pod_stats(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The pod's entry once it has CPU and memory for the pod and its container."""
    pod: dict[str, Any] | None = next((p for p in summary.get("pods", ()) if p["podRef"]["name"] == name), None)
    if pod is None or len(pod.get("containers", ())) != 1:
        return None
    fed = all(e.get("cpu", {}).get("usageCoreNanoSeconds", 0) > 0 and e.get("memory", {}).get("workingSetBytes", 0) > 0
              for e in (pod, pod["containers"][0]))
    return pod if fed else None


@pytest.mark.parametrize("gate", [False, True], ids=["default", GATE])
def test_pod_stats_with_and_without_stats_from_cri(tmp_path: Path, pycrid: Daemon, gate: bool) -> None:
    gates = {GATE: True} if gate else {}
    with running_kubelet(tmp_path / "kubelet", pycrid, feature_gates=gates) as kubelet:
        name = f"stats-{secrets.token_hex(3)}"
        kubelet.write_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                    {"name": "main", "image": "busybox:1", "command": ["sh", "-c", TRAFFIC]}]}})
        pod_name = kubelet.static_pod_name(name)
        wait_for("the pod running", lambda: running(pod_in(kubelet.api.json("/pods"), pod_name), ("main",)), 60,
                 kubelet.log_tail)

        def network_counted() -> dict[str, Any] | None:
            stats = pod_stats(kubelet.api.json("/stats/summary"), pod_name)
            if stats is None or (gate and stats.get("network", {}).get("rxBytes", 0) == 0):
                return None
            return stats
        stats = wait_for("the pod's stats", network_counted, 40, kubelet.log_tail)
        if gate:
            interfaces = {i["name"]: i for i in stats["network"]["interfaces"]}
            assert interfaces["eth0"]["rxBytes"] > 0 and interfaces["eth0"]["txBytes"] > 0, stats["network"]
        else:
            assert "network" not in stats, stats["network"]
