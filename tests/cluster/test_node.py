"""The node registered by the kubelet on pycrid: Ready, named as the runtime it runs on, and pycrid
took the node's pod range from the kubelet (UpdateRuntimeConfig), with no range of its own."""
from __future__ import annotations

import json

from runtime.version import VERSION
from tests.cluster.client import Cluster
from tests.cluster.layout import NODE_NAME


def test_the_node_is_ready_on_pycrid(cluster: Cluster) -> None:
    node = cluster.get("node", NODE_NAME)
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", node["status"]["conditions"]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == f"pycrid://{VERSION}"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.3"


def test_pycrid_uses_the_nodes_pod_cidr(cluster: Cluster) -> None:
    pod_cidr = cluster.get("node", NODE_NAME)["spec"]["podCIDR"]
    info = json.loads(cluster.crictl("info").stdout)
    assert info["config"]["network"]["pod_cidr"] == "", "the cluster's pycrid has no range of its own"
    assert info["network"]["podCIDR"] == pod_cidr
    assert {c["type"]: c["status"] for c in info["status"]["conditions"]} == {
        "RuntimeReady": True, "NetworkReady": True}
