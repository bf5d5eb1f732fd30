"""In-place resize through the CRI: UpdateContainerResources shows in ContainerStatus and in the
container's cgroup files (an update keeps what it does not set, also across a restart of pycrid),
and UpdatePodSandboxResources moves the pod cgroup's limits up and down, or is refused, changing
nothing, when the kernel refuses them. On cgroup v1 or v2 (tests/e2e/cgroupfiles.py)."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from tests.e2e import leaks
from tests.e2e.cgroupfiles import cgroup_limits, expected, in_every_hierarchy, memory_file, process_limits
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import BUSYBOX, Pods, container_config, pod_config, unique

MiB = 1 << 20
SLEEP = ["sleep", "3600"]


def linux_resources(daemon: Daemon, container_id: str) -> dict:
    return json.loads(crictl(daemon, "inspect", container_id).stdout)["status"]["resources"]["linux"]


def test_container_limits_show_in_its_status_and_cgroup_and_survive_a_restart(registry: str,
                                                                              tmp_path: Path) -> None:
    daemon = start(tmp_path / "pycrid", registry)
    try:
        crictl(daemon, "pull", BUSYBOX)
        pods = Pods(daemon, tmp_path)
        pod, pod_path = pods.run(pod_config(unique("resize"), pods.log_dir))
        cid = pods.create(pod, pod_path, container_config("app", SLEEP))
        pid = json.loads(crictl(daemon, "inspect", cid).stdout)["info"]["pid"]

        crictl(daemon, "update", "--memory", str(64 * MiB), "--cpu-quota", "20000", "--cpu-period", "100000", cid)
        crictl(daemon, "update", "--cpu-share", "256", cid)  # sets the shares alone: the rest stays
        assert process_limits(pid) == expected(64 * MiB, 256, 20000, 100000)
        shown = linux_resources(daemon, cid)
        assert (shown["memoryLimitInBytes"], shown["cpuShares"], shown["cpuQuota"], shown["cpuPeriod"]) == \
            (str(64 * MiB), "256", "20000", "100000")

        assert daemon.stop() == 0
        daemon = start(tmp_path / "pycrid")
        assert linux_resources(daemon, cid) == shown  # from the record kept at update time

        crictl(daemon, "update", "--memory", str(32 * MiB), "--cpu-quota", "50000", cid)  # down and up
        assert process_limits(pid) == expected(32 * MiB, 256, 50000, 100000)
        shown = linux_resources(daemon, cid)
        assert (shown["memoryLimitInBytes"], shown["cpuQuota"], shown["cpuShares"]) == (str(32 * MiB), "50000", "256")
    finally:
        left, _ = leaks.remove_everything(daemon)
    assert left.empty(), f"pycrid left behind: {left}"


@pytest.fixture
def pod_parent(pods: Pods) -> Iterator[str]:
    """A pod cgroup as the kubelet makes one per pod; removed (in every hierarchy) after the pods."""
    parent = f"/pycrid-e2e-{os.urandom(3).hex()}/pod-resize"
    yield parent
    pods.remove_all()
    for top in in_every_hierarchy(parent):
        for d in (top, top.parent):
            if d.is_dir():
                d.rmdir()


def recorded(daemon: Daemon, pod: str) -> dict:
    """What the verbose PodSandboxStatus says is in force (its config's resources)."""
    info = json.loads(crictl(daemon, "inspectp", pod).stdout)["info"]
    return info["config"]["resources"]


def test_a_pod_resize_moves_the_pod_cgroup_up_and_down(pycrid: Daemon, pods: Pods, pod_parent: str) -> None:
    config = pod_config(unique("podresize"), pods.log_dir)
    config["linux"]["cgroup_parent"] = pod_parent
    pod, pod_path = pods.run(config)
    cid = pods.create(pod, pod_path, container_config("app", SLEEP))
    with grpc.insecure_channel(pycrid.endpoint) as channel:
        runtime = pb_grpc.RuntimeServiceStub(channel)

        def resize(shares: int, quota: int, memory: int) -> None:
            runtime.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
                pod_sandbox_id=pod, overhead=pb.LinuxContainerResources(),
                resources=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=quota, cpu_shares=shares,
                                                     memory_limit_in_bytes=memory)))

        resize(1024, 50000, 256 * MiB)
        assert cgroup_limits(pod_parent) == expected(256 * MiB, 1024, 50000, 100000)
        resize(512, 20000, 128 * MiB)
        assert cgroup_limits(pod_parent) == expected(128 * MiB, 512, 20000, 100000)
        resources = recorded(pycrid, pod)
        assert (resources["cpu_shares"], resources["cpu_quota"], resources["memory_limit_in_bytes"]) == \
            (512, 20000, 128 * MiB)

        # The pod holds 32 MiB of tmpfs that no reclaim can free (no swap here): a limit below it
        # is the kernel's to refuse, and the resize with it, before anything is recorded.
        crictl(pycrid, "exec", "-s", cid, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=32")
        with pytest.raises(grpc.RpcError) as refused:
            resize(512, 20000, 8 * MiB)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
        assert cgroup_limits(pod_parent)[memory_file()] == str(128 * MiB)
        assert recorded(pycrid, pod)["memory_limit_in_bytes"] == 128 * MiB
