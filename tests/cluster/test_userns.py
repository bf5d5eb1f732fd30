"""A `hostUsers: false` pod on the cluster: root in the container is an unprivileged id on the node.
The kubelet picks the pod a range of host ids and pycrid makes the pod's user namespace from it;
seen from the node, the container's process runs as the range's first id, and its uid_map maps
0 onto that range."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually
from tests.kernel import TMPFS_IDMAP

USERNS_LENGTH = 65536  # what the kubelet gives every pod
# The pod's service account token is a tmpfs the kubelet mounts and pycrid id-maps into the pod:
# Kubernetes requires of a node for these pods a kernel that id-maps tmpfs (tests/kernel.py).


@pytest.mark.skipif(TMPFS_IDMAP, reason="this kernel id-maps tmpfs: the pod runs (the test below)")
def test_before_linux_6_3_the_start_fails_naming_the_token_volume(cluster: Cluster, namespace: str) -> None:
    cluster.apply(m.pod(namespace, "userns", m.container("app", m.IDLE), hostUsers=False))

    def failure() -> str | None:
        events = cluster.get("-n", namespace, "events", "--field-selector=involvedObject.name=userns")["items"]
        return next((e["message"] for e in events if e["reason"] == "Failed"), None)
    message = eventually("the container's failed start", failure, 120)
    assert "kube-api-access-" in message and "does not support id-mapped mounts" in message, message


@pytest.mark.skipif(not TMPFS_IDMAP, reason="hostUsers: false pods need Linux >= 6.3 (tmpfs id-mapped mounts)")
def test_root_in_a_host_users_false_pod_is_unprivileged_on_the_node(cluster: Cluster, namespace: str) -> None:
    cluster.apply(m.pod(namespace, "userns", m.container("app", m.IDLE), hostUsers=False))
    cluster.wait_ready(namespace, "pod/userns")
    assert cluster.kubectl("-n", namespace, "exec", "userns", "--", "id", "-u").stdout == "0\n"

    status = cluster.pod(namespace, "userns")["status"]["containerStatuses"][0]
    container_id = status["containerID"].removeprefix("pycrid://")
    info = json.loads(cluster.crictl("inspect", container_id).stdout)["info"]
    pid = info["pid"]
    uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    gid_map = Path(f"/proc/{pid}/gid_map").read_text().split()
    assert uid_map[0] == "0" and uid_map[2] == str(USERNS_LENGTH), uid_map
    host = int(uid_map[1])
    assert host >= USERNS_LENGTH, f"root of the pod is host uid {host}: in the node's own range"
    assert gid_map == uid_map, (gid_map, uid_map)
    lines = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert lines["Uid"].split() == [str(host)] * 4, lines["Uid"]
    assert lines["Gid"].split() == [str(host)] * 4, lines["Gid"]
    # Each pod gets a range of its own: pycrid reports the one the kubelet sent.
    inspected = json.loads(cluster.crictl("inspectp", info["sandboxID"]).stdout)
    userns = inspected["status"]["linux"]["namespaces"]["options"]["usernsOptions"]
    (uids,) = userns["uids"]
    assert (userns["mode"], int(uids["hostId"]), int(uids["length"])) == ("POD", host, USERNS_LENGTH), userns
