"""The kubelet's probes on pycrid: exec probes run through ExecSync, httpGet probes reach the pod's
address. A failing liveness probe restarts the container; readiness follows the probe both ways."""
from __future__ import annotations

from typing import Any

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually

FAST = {"periodSeconds": 1, "failureThreshold": 2, "timeoutSeconds": 2}
# Healthy for 4 s after each start, then not: each start is probed as healthy first.
SICKENS_EXEC = ["sh", "-c", "touch /tmp/alive; sleep 4; rm /tmp/alive; sleep 3600"]
SICKENS_HTTP = ["sh", "-c", "mkdir -p /www; touch /www/healthz; (sleep 4; rm /www/healthz) & "
                "exec httpd -f -p 8080 -h /www"]


@pytest.fixture(scope="module", autouse=True)
def probed(cluster: Cluster, namespace: str) -> None:
    """All four pods at once: the liveness ones need a few seconds to fail."""
    cluster.apply(
        m.pod(namespace, "live-exec", m.container(
            "main", SICKENS_EXEC, livenessProbe={"exec": {"command": ["cat", "/tmp/alive"]}, **FAST})),
        m.pod(namespace, "live-http", m.container(
            "main", SICKENS_HTTP, livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}, **FAST})),
        m.pod(namespace, "ready-exec", m.container(
            "main", m.IDLE, readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}, **FAST})),
        m.pod(namespace, "ready-http", m.web_container(
            "main", readinessProbe={"httpGet": {"path": "/ready", "port": 8080}, **FAST})))


def container_status(cluster: Cluster, namespace: str, pod: str) -> dict[str, Any]:
    statuses = cluster.pod(namespace, pod)["status"].get("containerStatuses", [{}])
    return dict(statuses[0])


def restarted_by_liveness(cluster: Cluster, namespace: str, pod: str) -> None:
    status = eventually(f"{pod} restarted", lambda: (
        s if (s := container_status(cluster, namespace, pod)).get("restartCount", 0) >= 1 else None),
        60, cluster.diagnosis)
    assert "terminated" in status["lastState"], status
    events = cluster.kubectl("-n", namespace, "get", "events", f"--field-selector=involvedObject.name={pod}",
                             "-o", "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}").stdout
    assert "Unhealthy: Liveness probe failed" in events, events
    assert "failed liveness probe, will be restarted" in events, events


def test_liveness_exec_probe_restarts(cluster: Cluster, namespace: str) -> None:
    restarted_by_liveness(cluster, namespace, "live-exec")


def test_liveness_http_probe_restarts(cluster: Cluster, namespace: str) -> None:
    restarted_by_liveness(cluster, namespace, "live-http")


def ready(cluster: Cluster, namespace: str, pod: str, expected: bool) -> None:
    eventually(f"{pod} ready={expected}", lambda: (
        True if container_status(cluster, namespace, pod).get("ready") is expected else None), 30, cluster.diagnosis)


def running(cluster: Cluster, namespace: str, pod: str) -> None:
    eventually(f"{pod} running", lambda: (
        True if "running" in container_status(cluster, namespace, pod).get("state", {}) else None), 60,
        cluster.diagnosis)


def test_readiness_exec_probe(cluster: Cluster, namespace: str) -> None:
    running(cluster, namespace, "ready-exec")
    ready(cluster, namespace, "ready-exec", False)
    cluster.kubectl("-n", namespace, "exec", "ready-exec", "--", "touch", "/tmp/ready")
    ready(cluster, namespace, "ready-exec", True)
    cluster.kubectl("-n", namespace, "exec", "ready-exec", "--", "rm", "/tmp/ready")
    ready(cluster, namespace, "ready-exec", False)


def test_readiness_http_probe(cluster: Cluster, namespace: str) -> None:
    running(cluster, namespace, "ready-http")
    ready(cluster, namespace, "ready-http", False)
    cluster.kubectl("-n", namespace, "exec", "ready-http", "--", "touch", "/www/ready")
    ready(cluster, namespace, "ready-http", True)
    cluster.kubectl("-n", namespace, "exec", "ready-http", "--", "rm", "/www/ready")
    ready(cluster, namespace, "ready-http", False)
