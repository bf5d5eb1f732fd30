"""A kubelet with the EventedPLEG feature gate follows its pods through pycrid's GetContainerEvents:
a pod runs, and a container killed behind the kubelet's back is restarted by it well within the
five minutes between the relists it still makes with EventedPLEG on, so the event did it."""
from __future__ import annotations

import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon, crictl
from tests.kubelet.conftest import running_kubelet
from tests.kubelet.pods import container_statuses, pod_in, running, wait_for
from tests.kubelet.standalone import StandaloneKubelet

IDLE = "trap 'exit 0' TERM; sleep 3600 & wait"


@pytest.fixture
def evented_kubelet(tmp_path: Path, pycrid: Daemon) -> Iterator[StandaloneKubelet]:
    with running_kubelet(tmp_path / "kubelet", pycrid, feature_gates={"EventedPLEG": True}) as made:
        yield made


def metric(kubelet: StandaloneKubelet, name: str) -> float:
    text = kubelet.api.text("/metrics")
    found = re.search(rf"^kubelet_{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def restarted(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    pod = running(pod, ("app",))
    return pod if pod and container_statuses(pod)["app"]["restartCount"] >= 1 else None


def test_a_killed_container_is_restarted_through_the_event_stream(evented_kubelet: StandaloneKubelet,
                                                                  pycrid: Daemon) -> None:
    kubelet = evented_kubelet
    name = f"evented-{secrets.token_hex(3)}"
    pod_name = kubelet.static_pod_name(name)
    manifest = kubelet.write_manifest({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "app", "image": "busybox:1", "command": ["sh", "-c", IDLE]}]}})

    def pod() -> dict[str, Any] | None:
        return pod_in(kubelet.api.json("/pods"), pod_name)

    wait_for("the pod running", lambda: running(pod(), ("app",)), 60, kubelet.log_tail)
    assert metric(kubelet, "evented_pleg_connection_success_count") >= 1, "the kubelet never took the stream"
    assert "event stream opened" in pycrid.log_path.read_text()

    (first,) = [c for c in crictl(pycrid, "ps", "-q", "--name", "^app$", "--label",
                                  f"io.kubernetes.pod.name={pod_name}").stdout.split()]
    pid = int(crictl(pycrid, "inspect", "-o", "go-template", "--template", "{{.info.pid}}", first).stdout)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for("the container restarted", lambda: restarted(pod()), 45, kubelet.log_tail)
    assert time.monotonic() - killed < 45  # the kubelet's relist comes every 300 s with EventedPLEG on
    assert metric(kubelet, "evented_pleg_connection_error_count") == 0, "the kubelet fell back to relisting"
    app = container_statuses(pod())["app"]
    assert app["lastState"]["terminated"]["exitCode"] == 137, app

    manifest.unlink()
    wait_for("the pod gone from the kubelet", lambda: True if pod() is None else None, 30, kubelet.log_tail)
