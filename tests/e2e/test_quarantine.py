"""A pycrid killed with SIGKILL whose pod (and container) records are then torn in half: at the next
start the torn records are quarantined, and the container's processes, the pod's pause, their
cgroups, the pod's pinned namespaces and its veth are reclaimed by id. A container whose record is
whole goes with its quarantined pod."""
from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.linux import proc
from tests.e2e import leaks
from tests.e2e.daemon import crictl, start
from tests.e2e.workloads import POD_NS, Pods, container_config, container_pid, pod_config, unique
from tests.ports import free_port


def tear(record: Path) -> None:
    """Half of it, as a disk that lost the rest would leave it."""
    data = record.read_bytes()
    record.write_bytes(data[: len(data) // 2])


def cgroup_pids(dirs: tuple[str, ...]) -> set[int]:
    return {int(p) for d in dirs for p in Path(d, "cgroup.procs").read_text().split()}


def quarantined(metrics_address: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {s.labels["kind"]: s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "pycrid_records_quarantined_total"}


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still alive (not exited, or exited but unreaped) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := {p for p in pids if (s := proc.read_stat(p)) is not None and s.state != "Z"}) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("torn", [("sandbox", "container"), ("sandbox",)], ids=["both", "pod-only"])
def test_torn_records_are_quarantined_and_what_they_named_is_reclaimed(registry: str, tmp_path: Path,
                                                                       torn: tuple[str, ...]) -> None:
    base, metrics = tmp_path / "pycrid", f"127.0.0.1:{free_port()}"
    daemon = start(base, registry, metrics_address=metrics)  # its config is kept for the restart
    try:
        crictl(daemon, "pull", "busybox:1")
        pods = Pods(daemon, tmp_path)
        pod_id, pod_path = pods.run(pod_config(unique("torn"), pods.log_dir, pid=POD_NS))  # with a pause
        container_id = pods.create(pod_id, pod_path, container_config("sleeper", ["sleep", "3600"], pid=POD_NS))
        init = container_pid(daemon, container_id)

        # What the two objects hold on the machine, seen before the records are lost.
        cgroups = leaks.container_cgroups({container_id, pod_id})
        processes = cgroup_pids(cgroups)
        pod_dir = daemon.state / "sandboxes" / pod_id
        container_dirs = [daemon.root / "containers" / container_id, daemon.state / "containers" / container_id]
        pins = {os.path.basename(m) for m in leaks.mounts_under(str(pod_dir))}
        veths = leaks.bridge_ports(daemon.bridge)
        assert {c.rsplit("/", 1)[1] for c in cgroups} == {container_id, pod_id}, cgroups
        assert init in processes and len(processes) >= 2, processes  # the sleeper and the pause
        rootfs = [line for line in Path(f"/proc/{init}/mountinfo").read_text().splitlines()
                  if line.split()[4] == "/" and " - overlay " in line]
        assert rootfs, "the container's rootfs is an overlay mount in its own mount namespace"
        assert pins >= {"netns", "ipcns", "utsns", "shm"}, pins
        assert len(veths) == 1 and all(d.is_dir() for d in [pod_dir, *container_dirs])
        assert quarantined(metrics) == {"container": 0, "sandbox": 0}

        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
        records = {pod_id: daemon.root / "sandboxes" / f"{pod_id}.json",
                   container_id: daemon.root / "container-records" / f"{container_id}.json"}
        if "container" not in torn:
            del records[container_id]
        for record in records.values():
            tear(record)
        assert wait_gone(processes, timeout=0) == processes, "only pycrid serve was killed"
        daemon = start(base, registry)

        for object_id, record in records.items():
            assert not record.exists()
            moved = list((record.parent / "quarantine").glob(f"{object_id}.*.json"))
            assert len(moved) == 1 and moved[0].stat().st_size > 0, moved
        log = daemon.log_path.read_text()
        assert [log.count(f"{i}: unreadable record quarantined") for i in records] == [1] * len(torn), log[-4000:]
        assert wait_gone(processes) == set()
        assert leaks.container_cgroups({container_id, pod_id}) == ()
        assert leaks.mounts_under(str(pod_dir)) == ()
        # The rootfs was mounted in the container's own mount namespace, gone with its processes;
        # nothing of the container may be mounted in the host's either.
        assert all(leaks.mounts_under(str(d)) == () for d in container_dirs)
        assert not pod_dir.exists() and not any(d.exists() for d in container_dirs)
        assert leaks.bridge_ports(daemon.bridge) == ()
        assert crictl(daemon, "ps", "-a", "-q").stdout.split() == []
        assert crictl(daemon, "pods", "-q").stdout.split() == []
        assert quarantined(metrics) == {"container": int("container" in torn), "sandbox": 1}
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
