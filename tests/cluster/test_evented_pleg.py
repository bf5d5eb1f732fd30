"""The cluster's kubelet with the EventedPLEG feature gate (`up --kubelet-feature-gates
EventedPLEG=true` restarts it so): it follows its pods through pycrid's GetContainerEvents and
relists only every 300 s, and pod lifecycle works end to end: a pod starts, exec runs in it, a
crashing container is restarted (well before a relist would have seen its exit), and deleted pods
go. The kubelet is restarted without the gate afterwards."""
from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import HACK, UP_TIMEOUT, Cluster, eventually
from tests.cluster.layout import NODE_NAME

CRASH = ["sh", "-c", "sleep 2; exit 3"]


def up_with_gates(cluster: Cluster, gates: str) -> None:
    done = subprocess.run([str(HACK / "up"), "--kubelet-feature-gates", gates], env=cluster.env,
                          capture_output=True, text=True, timeout=UP_TIMEOUT)
    # up's own steps and its error's first line, then what it quotes of the component's log
    said = [line for line in done.stderr.splitlines() if line.startswith(("cluster [", "RuntimeError", "Traceback"))]
    assert done.returncode == 0, "\n".join(said) + "\n...\n" + done.stderr[-3000:]
    assert "restarting the kubelet: its config changed" in done.stderr, done.stderr


@pytest.fixture(scope="module", autouse=True)
def evented_kubelet(cluster: Cluster) -> Iterator[None]:
    opened_before = cluster.layout.log("pycrid").read_text().count("event stream opened")
    up_with_gates(cluster, "EventedPLEG=true")
    eventually("the kubelet's event stream", lambda: True if cluster.layout.log("pycrid").read_text().count(
        "event stream opened") > opened_before else None, 60, cluster.diagnosis)
    yield
    up_with_gates(cluster, "")


def kubelet_metric(cluster: Cluster, name: str) -> float:
    text = cluster.kubectl("get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/metrics").stdout
    found = re.search(rf"^kubelet_{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_kubelet_runs_with_evented_pleg(cluster: Cluster) -> None:
    config = json.loads(cluster.kubectl("get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/configz").stdout)
    assert config["kubeletconfig"]["featureGates"]["EventedPLEG"] is True, config["kubeletconfig"]["featureGates"]
    assert kubelet_metric(cluster, "evented_pleg_connection_success_count") >= 1


def test_pod_lifecycle_on_the_event_stream(cluster: Cluster, namespace: str) -> None:
    cluster.apply(m.pod(namespace, "steady", m.container("app", m.IDLE)),
                  m.pod(namespace, "crashing", m.container("crash", CRASH)))
    cluster.wait_ready(namespace, "pod/steady")
    assert cluster.kubectl("-n", namespace, "exec", "steady", "--", "echo", "hi").stdout == "hi\n"
    assert cluster.kubectl("-n", namespace, "exec", "steady", "--", "sh", "-c", "exit 4",
                           check=False).returncode == 4

    started = time.monotonic()

    def restarted() -> dict[str, Any] | None:
        status = cluster.pod(namespace, "crashing")["status"].get("containerStatuses", [{}])[0]
        return status if status.get("restartCount", 0) >= 1 and "terminated" in status.get("lastState", {}) else None
    # Its first exit comes 2 s after its start, its restart 10 s (the crash-loop back-off) later:
    # seen only at a relist, 300 s apart with the gate, it would take minutes.
    status = eventually("the crashing container restarted", restarted, 60, cluster.diagnosis, interval=1)
    assert status["lastState"]["terminated"]["exitCode"] == 3, status
    assert time.monotonic() - started < 60

    cluster.kubectl("-n", namespace, "delete", "pod", "steady", "crashing", "--wait=true", "--timeout=60s", timeout=90)
    running = cluster.crictl("ps", "-q", "--label", f"io.kubernetes.pod.namespace={namespace}").stdout.split()
    assert running == [], running
    assert kubelet_metric(cluster, "evented_pleg_connection_error_count") == 0, "the kubelet fell back to relisting"
