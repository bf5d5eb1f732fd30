"""Stats and metrics as an operator sees them with crictl: `stats`, `statsp`, `metricdescs` and
`metricsp` against the suite's pycrid, on a pod running a busy loop and a container holding a
few MiB. Every pod made here is removed (the `pods` fixture), for the session's leak check."""
from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.daemon import Daemon, crictl
from tests.timescale import TIMEOUT_SCALE
from tests.e2e.workloads import Pods, container_config, pod_config, unique

MIB = 1024 * 1024
BUSY = ["sh", "-c", "while :; do :; done"]
# 8 MiB kept by the shell, then /held says so; the trailing echo keeps the shell from exec'ing
# sleep in its place.
HOLD = ["sh", "-c", "x=$(yes aaaaaaa | head -c 8388608); touch /held; sleep 3600; echo ${#x}"]


@pytest.fixture
def pod(pods: Pods) -> tuple[str, str, str]:
    """A pod with a busy loop and a memory holder: (pod id, busy id, holder id)."""
    name = unique("stats")
    pod_id, path = pods.run(pod_config(name, pods.log_dir, labels={"app": name}))
    busy = pods.create(pod_id, path, container_config("busy", BUSY, labels={"role": "busy"}))
    hold = pods.create(pod_id, path, container_config("hold", HOLD, labels={"role": "hold"}))
    started = time.monotonic()
    deadline = started + 30 * TIMEOUT_SCALE  # an emulated guest (hack/vm) takes its time
    while crictl(pods.daemon, "exec", "-s", hold, "test", "-e", "/held", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the holder did not fill its 8 MiB"
        time.sleep(0.2)
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))  # the loop accrues CPU time
    return pod_id, busy, hold


def as_json(daemon: Daemon, *args: str) -> dict:
    return json.loads(crictl(daemon, *args, "-o", "json").stdout)


def table(daemon: Daemon, *args: str) -> list[list[str]]:
    """crictl's table, split in cells; it clears the screen first (an ANSI sequence)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", crictl(daemon, *args).stdout)
    return [line.split() for line in text.splitlines() if line.strip()]


def value(field: dict | None) -> int:
    return int((field or {}).get("value", 0))


def test_crictl_stats_shows_cpu_memory_and_the_writable_layer(pycrid: Daemon, pod: tuple[str, str, str]) -> None:
    pod_id, busy, hold = pod
    stats = {s["attributes"]["id"]: s for s in as_json(pycrid, "stats", "--pod", pod_id)["stats"]}
    assert set(stats) == {busy, hold}
    b, h = stats[busy], stats[hold]
    assert b["attributes"]["metadata"]["name"] == "busy" and b["attributes"]["labels"]["role"] == "busy"
    assert value(b["cpu"]["usageCoreNanoSeconds"]) > 500_000_000  # over a second of spinning
    assert value(h["memory"]["workingSetBytes"]) >= 8 * MIB
    assert value(h["memory"]["usageBytes"]) >= value(h["memory"]["workingSetBytes"])
    assert value(h["memory"]["rssBytes"]) >= 8 * MIB and value(h["memory"]["pageFaults"]) > 0
    assert h["writableLayer"]["fsId"]["mountpoint"].endswith("/upper")
    assert value(h["writableLayer"]["inodesUsed"]) >= 1
    # The table: crictl samples twice, a second apart, and prints the CPU share in between.
    rows = table(pycrid, "stats", "--id", busy)
    assert rows[0][:3] == ["CONTAINER", "NAME", "CPU"]
    row = next(r for r in rows[1:] if r[0] == busy[:13])
    assert row[1] == "busy" and 50.0 <= float(row[2]) <= 110.0, row


def test_usage_nano_cores_comes_from_the_previous_call(pycrid: Daemon, pod: tuple[str, str, str]) -> None:
    _, busy, hold = pod
    as_json(pycrid, "stats", "--id", busy)
    time.sleep(1)
    stats = as_json(pycrid, "stats", "--id", busy)["stats"][0]
    cores = value(stats["cpu"].get("usageNanoCores")) / 1e9
    assert 0.5 <= cores <= 1.1, cores
    assert stats["cpu"]["timestamp"] and stats["memory"]["timestamp"]
    labelled = as_json(pycrid, "stats", "--label", "role=hold")["stats"]
    assert [s["attributes"]["id"] for s in labelled] == [hold]


def test_crictl_statsp_shows_the_pod_and_its_network(pycrid: Daemon, pod: tuple[str, str, str]) -> None:
    pod_id, busy, hold = pod
    [stats] = as_json(pycrid, "statsp", "--id", pod_id)["stats"]
    linux = stats["linux"]
    assert stats["attributes"]["id"] == pod_id and stats["attributes"]["metadata"]["namespace"] == "e2e-pods"
    # Without a cgroup_parent the pod's usage is the sum of its containers'.
    containers = {c["attributes"]["id"]: c for c in linux["containers"]}
    assert set(containers) == {busy, hold}
    assert value(linux["cpu"]["usageCoreNanoSeconds"]) >= value(containers[busy]["cpu"]["usageCoreNanoSeconds"])
    assert value(linux["memory"]["workingSetBytes"]) >= 8 * MIB
    assert value(linux["process"]["processCount"]) >= 2
    network = linux["network"]
    assert network["defaultInterface"]["name"] == "eth0"
    assert {i["name"] for i in network["interfaces"]} == {"eth0"}
    rows = table(pycrid, "statsp", "--id", pod_id)
    assert rows[0] == ["POD", "POD", "ID", "CPU", "%", "MEM"]
    assert float(next(r for r in rows[1:] if r[1] == pod_id[:13])[2]) >= 50.0


def test_crictl_metricdescs_and_metricsp(pycrid: Daemon, pod: tuple[str, str, str]) -> None:
    pod_id, busy, hold = pod
    descriptors = {d["name"]: d for d in as_json(pycrid, "metricdescs")["descriptors"]}
    usage = descriptors["container_cpu_usage_seconds_total"]
    assert usage["labelKeys"] == ["id", "name", "image", "pod", "namespace", "container", "cpu"]
    assert {"container_memory_working_set_bytes", "container_network_receive_bytes_total",
            "container_fs_usage_bytes", "container_processes", "container_oom_events_total"} <= set(descriptors)

    pods = {p["podSandboxId"]: p for p in as_json(pycrid, "metricsp")["podMetrics"]}
    ours = pods[pod_id]
    for metric in [*ours["metrics"], *(m for c in ours["containerMetrics"] for m in c["metrics"])]:
        assert len(metric["labelValues"]) == len(descriptors[metric["name"]]["labelKeys"]), metric
    assert {c["containerId"] for c in ours["containerMetrics"]} == {busy, hold}
    held = next(c for c in ours["containerMetrics"] if c["containerId"] == hold)["metrics"]
    ws = next(m for m in held if m["name"] == "container_memory_working_set_bytes")
    assert value(ws["value"]) >= 8 * MIB and ws["metricType"] == "GAUGE"
    assert ws["labelValues"][1:] == [hold, "busybox:1", ws["labelValues"][3], "e2e-pods", "hold"]
    rx = [m for m in ours["metrics"] if m["name"] == "container_network_receive_bytes_total"]
    assert [m["labelValues"][-1] for m in rx] == ["eth0"]
