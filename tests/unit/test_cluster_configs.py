"""The pure parts of hack/cluster (tests/cluster): what each component is told."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.cluster import addons, cluster, control_plane, node, pki, prometheus
from tests.cluster.layout import NODE_IP, Layout

LAYOUT = Layout.at(Path("/c"))


def test_pycrid_waits_for_the_kubelets_range_and_mirrors_to_the_clusters_registry() -> None:
    config = tomllib.loads(node.pycrid_config(LAYOUT))
    assert config["network"] == {"mode": "bridge", "pod_cidr": ""}
    assert config["listen"] == "unix:///c/pycrid/run/pycrid.sock" and config["root"] == "/c/pycrid/root"
    assert config["registries"]["registry.k8s.io"]["mirrors"] == ["http://127.0.0.1:5000"]
    assert config["registries"]["127.0.0.1:5000"]["insecure"] is True
    assert config["metrics"]["address"] == f"{NODE_IP}:9300"


def test_the_kubelet_takes_pod_stats_from_cri_and_authenticates_its_clients() -> None:
    config = node.kubelet_config(LAYOUT, "unix:///c/pycrid/run/pycrid.sock")
    assert config["featureGates"] == {"PodAndContainerStatsFromCRI": True}
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"]["clientCAFile"] == "/c/pki/ca.crt"
    assert config["authorization"]["mode"] == "Webhook"
    assert (config["address"], config["clusterDNS"]) == (NODE_IP, ["10.96.0.10"])
    assert config["cgroupRoot"] == LAYOUT.cgroup_root and LAYOUT.cgroup_root.startswith("/pycrid-cluster-")


def test_kube_proxy_uses_nftables_and_leaves_the_machines_conntrack_alone() -> None:
    config = node.kube_proxy_config(LAYOUT)
    assert config["mode"] == "nftables"
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0


def test_the_controller_manager_gives_the_node_a_range() -> None:
    argv = control_plane.controller_manager_argv(LAYOUT)
    assert {"--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=24"} <= set(argv)


def test_leaf_certificates_say_what_they_are_for() -> None:
    apiserver = next(c for c in pki.CERTS if c.name == "apiserver")
    text = pki.extensions(apiserver)
    assert "extendedKeyUsage = serverAuth\n" in text and f"IP:{NODE_IP}" in text and "IP:10.96.0.1" in text
    assert pki.subject("system:node:n", ("system:nodes",)) == "/O=system:nodes/CN=system:node:n"


def test_prometheus_discovers_the_node_and_scrapes_pycrid_there() -> None:
    jobs = {job["job_name"]: job for job in prometheus.config(LAYOUT)["scrape_configs"]}
    sd = jobs["pycrid"]["kubernetes_sd_configs"][0]
    assert (sd["role"], sd["api_server"]) == ("node", f"https://{NODE_IP}:6443")
    assert jobs["pycrid"]["relabel_configs"][0]["replacement"] == "$1:9300"
    assert jobs["kubelet-resource"]["metrics_path"] == "/metrics/resource"


def test_the_addons_come_from_the_mirrored_public_names() -> None:
    images = {c["image"] for item in addons.all_manifests()["items"] if item["kind"] == "Deployment"
              for c in item["spec"]["template"]["spec"]["containers"]}
    assert images == {addons.COREDNS_IMAGE, addons.METRICS_SERVER_IMAGE}


def test_up_adds_the_kubelet_feature_gates_it_is_given_to_the_clusters_own() -> None:
    assert node.parse_feature_gates("EventedPLEG=true, Other=False") == {"EventedPLEG": True, "Other": False}
    assert node.parse_feature_gates("") == {}
    for wrong in ("EventedPLEG", "EventedPLEG=yes", "=true"):
        with pytest.raises(ValueError):
            node.parse_feature_gates(wrong)
    config = node.kubelet_config(LAYOUT, "unix:///s", {"EventedPLEG": True})
    assert config["featureGates"] == {"PodAndContainerStatsFromCRI": True, "EventedPLEG": True}


def test_the_kubelet_gates_are_kept_until_up_is_given_others(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    assert cluster.kubelet_gates_of(layout, None) == {}
    assert cluster.kubelet_gates_of(layout, {"EventedPLEG": True}) == {"EventedPLEG": True}
    assert cluster.kubelet_gates_of(layout, None) == {"EventedPLEG": True}
    assert cluster.kubelet_gates_of(layout, {}) == {}
