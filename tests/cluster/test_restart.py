"""A SIGKILL of `pycrid serve` on a node running 20 pods: the restarted pycrid (hack/cluster/up starts
just what is missing) finds everything again, so the kubelet restarts no container and recreates no
sandbox; and the node's pod range, sent once by the kubelet, still applies to the next pod."""
from __future__ import annotations

import ipaddress
import subprocess
import time
from datetime import datetime
from typing import Any

from tests.cluster import daemons
from tests.cluster import manifests as m
from tests.cluster.client import HACK, UP_TIMEOUT, Cluster
from tests.cluster.layout import NODE_NAME

PODS = 20
SETTLE_SECONDS = 20  # the kubelet relists every second and syncs each pod within this


def restart_pycrid(cluster: Cluster) -> None:
    daemons.kill(cluster.layout, "pycrid")
    up = subprocess.run([str(HACK / "up")], env=cluster.env, capture_output=True, text=True, timeout=UP_TIMEOUT)
    assert up.returncode == 0, up.stderr[-4000:]
    assert "starting pycrid" in up.stderr and "starting the kubelet" not in up.stderr, up.stderr


def identities(cluster: Cluster, namespace: str) -> dict[str, tuple[Any, ...]]:
    """Per pod: its IP, and per container its ID, restart count and readiness."""
    pods = cluster.get("-n", namespace, "pods", "-l", "app=many")["items"]
    return {p["metadata"]["name"]: (p["status"].get("podIP"), tuple(
        (c["containerID"], c["restartCount"], c["ready"]) for c in p["status"]["containerStatuses"]))
        for p in pods}


def test_sigkill_of_pycrid_restarts_no_container(cluster: Cluster, namespace: str) -> None:
    cluster.apply(m.deployment(namespace, "many", PODS, m.container("main", m.IDLE)))
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/many", "--timeout=240s", timeout=260)
    before = identities(cluster, namespace)
    assert len(before) == PODS and all(c[2] for _, cs in before.values() for c in cs), before
    time.sleep(1.5)  # events are stamped to the second: the rollout's are all before this one
    killed_at = int(time.time())

    restart_pycrid(cluster)
    time.sleep(SETTLE_SECONDS)

    assert identities(cluster, namespace) == before
    node = cluster.get("node", NODE_NAME)
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    # Nothing the kubelet does to replace a container or a sandbox happened after the kill.
    events = cluster.get("-n", namespace, "events")["items"]
    replacing = [f"{e['reason']}: {e['involvedObject']['name']}: {e['message']}" for e in events
                 if e["reason"] in ("Killing", "Created", "Started", "SandboxChanged", "BackOff", "Failed")
                 and _time(e) >= killed_at]
    assert replacing == [], replacing
    cluster.kubectl("-n", namespace, "delete", "deployment/many", "--wait=true", "--timeout=120s", timeout=150)


def _time(event: dict[str, Any]) -> float:
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_new_pod_after_a_restart_gets_an_address_in_the_nodes_range(cluster: Cluster, namespace: str) -> None:
    restart_pycrid(cluster)
    cluster.apply(m.pod(namespace, "after-restart", m.container("main", m.IDLE)))
    cluster.wait_ready(namespace, "pod/after-restart")
    pod_cidr = ipaddress.ip_network(cluster.get("node", NODE_NAME)["spec"]["podCIDR"])
    pod_ip = ipaddress.ip_address(cluster.pod(namespace, "after-restart")["status"]["podIP"])
    assert pod_ip in pod_cidr, (pod_ip, pod_cidr)
