"""The node registered by the kubelet on pycrid: Ready, named as the runtime it runs on, and pycrid
took the node's pod range from the kubelet (UpdateRuntimeConfig), with no range of its own, before
it ran any pod (until then it reports NetworkReady false, so the node is not Ready for pods)."""
from __future__ import annotations

import json
import re

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


def test_no_pod_ran_before_the_nodes_range_arrived(cluster: Cluster) -> None:
    pod_cidr = cluster.get("node", NODE_NAME)["spec"]["podCIDR"]
    log = cluster.layout.log("pycrid").read_text()
    got_range = log.index(f"pod CIDR {pod_cidr} from the kubelet (was none)")
    first_sandbox = re.search(r"sandbox [0-9a-f]{64} \(", log)
    assert first_sandbox is not None and got_range < first_sandbox.start()
