"""A real kubelet (v1.36, standalone: static pods, no API server) runs a pod on pycrid, probes it,
reads its logs and stats through its own API, and removes it when its manifest goes."""
from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
import tomllib
from pathlib import Path
from typing import Any

from tests.e2e.daemon import Daemon, crictl
from tests.kubelet.pods import container_statuses, pod_in, wait_for
from tests.kubelet.pods import running as pods_running
from tests.kubelet.standalone import StandaloneKubelet

TICKER = "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"
IDLE = "trap 'exit 0' TERM; sleep 3600 & wait"
PROBE_PERIOD = 1


def static_pod(name: str, flags: Path) -> dict[str, Any]:
    """Two containers: one logs a numbered line every 0.2 s; the other is ready while the file
    ``flags``/ready exists on the host (a hostPath volume; the kubelet's exec probe runs `cat` in
    the container through ExecSync)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 5,
                     "volumes": [{"name": "flags", "hostPath": {"path": str(flags), "type": "Directory"}}],
                     "containers": [
                         {"name": "ticker", "image": "busybox:1", "command": ["sh", "-c", TICKER]},
                         {"name": "probed", "image": "busybox:1", "command": ["sh", "-c", IDLE],
                          "volumeMounts": [{"name": "flags", "mountPath": "/flags", "readOnly": True}],
                          "readinessProbe": {"exec": {"command": ["cat", "/flags/ready"]},
                                             "periodSeconds": PROBE_PERIOD}}]}}


def running(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pod once it is Running with both containers running."""
    return pods_running(pod, ("ticker", "probed"))


def ready(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    conditions = {c["type"]: c["status"] for c in (pod or {}).get("status", {}).get("conditions", ())}
    return pod if conditions.get("Ready") == "True" else None


def pod_stats(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The pod's entry in /stats/summary once it has CPU and memory for the pod and each container."""
    pod: dict[str, Any] | None = next((p for p in summary.get("pods", ()) if p["podRef"]["name"] == name), None)
    if pod is None or {c["name"] for c in pod.get("containers", ())} != {"ticker", "probed"}:
        return None
    entries = [pod, *pod["containers"]]
    fed = all(e.get("cpu", {}).get("usageCoreNanoSeconds", 0) > 0 and e.get("memory", {}).get("workingSetBytes", 0) > 0
              for e in entries)
    return pod if fed else None


def runtime_objects(runtime: Daemon, uid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's sandboxes and containers (any state) as pycrid lists them."""
    label = f"io.kubernetes.pod.uid={uid}"
    sandboxes = json.loads(crictl(runtime, "pods", "--label", label, "-o", "json").stdout)["items"]
    containers = json.loads(crictl(runtime, "ps", "-a", "--label", label, "-o", "json").stdout)["containers"]
    return sandboxes, containers


def test_static_pod_runs_logs_stats_and_goes(kubelet: StandaloneKubelet, pycrid: Daemon) -> None:
    name = f"standalone-{secrets.token_hex(3)}"
    pod_name = kubelet.static_pod_name(name)
    flags = kubelet.base / "flags"
    flags.mkdir()
    manifest = kubelet.write_manifest(static_pod(name, flags))

    def pods() -> dict[str, Any]:
        return kubelet.api.json("/pods")

    pod = wait_for("the pod running", lambda: running(pod_in(pods(), pod_name)), 60, kubelet.log_tail)
    uid = pod["metadata"]["uid"]
    sandboxes, containers = runtime_objects(pycrid, uid)
    assert [s["state"] for s in sandboxes] == ["SANDBOX_READY"], sandboxes
    assert sorted((c["metadata"]["name"], c["state"]) for c in containers) == [
        ("probed", "CONTAINER_RUNNING"), ("ticker", "CONTAINER_RUNNING")], containers
    pod_cidr = tomllib.loads(pycrid.config_path.read_text())["network"]["pod_cidr"]
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(pod_cidr), pod["status"]
    assert pod_name in kubelet.api.text("/runningpods/")

    # The probe fails while the flag is missing (ExecSync's exit status reaches the kubelet) ...
    time.sleep(2.5 * PROBE_PERIOD)
    probing = pod_in(pods(), pod_name)
    assert probing is not None
    assert not container_statuses(probing)["probed"]["ready"] and not ready(probing), probing["status"]
    # ... and passes once it is there.
    (flags / "ready").touch()
    wait_for("the pod ready", lambda: ready(pod_in(pods(), pod_name)), 10, kubelet.log_tail)
    # The kubelet's /run runs a command through ExecSync and answers its output.
    assert kubelet.api.post(f"/run/default/{pod_name}/probed?cmd=echo%20ran") == (200, b"ran\n")

    # The kubelet reads the CRI log file pycrid writes: every line, in order, none torn.
    def ticks() -> list[str] | None:
        lines = kubelet.api.text(f"/containerLogs/default/{pod_name}/ticker").splitlines()
        return lines if len(lines) >= 5 else None
    lines = wait_for("5 log lines", ticks, 10, kubelet.log_tail)
    assert lines == [f"tick {i}" for i in range(len(lines))], lines
    stamped = kubelet.api.text(f"/containerLogs/default/{pod_name}/ticker?timestamps=true&tailLines=2").splitlines()
    assert len(stamped) == 2 and all(re.fullmatch(r"\S+Z tick \d+", line) for line in stamped), stamped

    stats = wait_for("the pod's CPU and memory in /stats/summary",
                     lambda: pod_stats(kubelet.api.json("/stats/summary"), pod_name), 40, kubelet.log_tail)
    assert stats["podRef"]["uid"] == uid

    manifest.unlink()
    wait_for("the pod gone from the kubelet", lambda: True if pod_in(pods(), pod_name) is None else None,
             30, kubelet.log_tail)
    # The kubelet removes the containers at once, and the stopped sandbox at its next container
    # garbage collection (one a minute from its start; the only caller of RemovePodSandbox).
    wait_for("the pod removed from pycrid", lambda: True if runtime_objects(pycrid, uid) == ([], []) else None,
             75, kubelet.log_tail)
