"""In-place resize through the CRI: UpdateContainerResources shows in ContainerStatus and in the
container's cgroup files (an update keeps what it does not set, also across a restart of pycrid),
and UpdatePodSandboxResources moves the pod cgroup's limits up and down, or is refused, changing
nothing, when the kernel refuses them."""
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
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import BUSYBOX, Pods, container_config, host_cgroup, pod_config, unique

MiB = 1 << 20
SLEEP = ["sleep", "3600"]


def linux_resources(daemon: Daemon, container_id: str) -> dict:
    return json.loads(crictl(daemon, "inspect", container_id).stdout)["status"]["resources"]["linux"]


def cgroup_files(pid: int) -> dict[str, str]:
    memory, cpu = host_cgroup(pid, "memory"), host_cgroup(pid, "cpu")
    return {"memory": (memory / "memory.limit_in_bytes").read_text().strip(),
            "shares": (cpu / "cpu.shares").read_text().strip(),
            "quota": (cpu / "cpu.cfs_quota_us").read_text().strip(),
            "period": (cpu / "cpu.cfs_period_us").read_text().strip()}


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
        want = {"memory": str(64 * MiB), "shares": "256", "quota": "20000", "period": "100000"}
        assert cgroup_files(pid) == want
        shown = linux_resources(daemon, cid)
        assert {"memory": shown["memoryLimitInBytes"], "shares": shown["cpuShares"], "quota": shown["cpuQuota"],
                "period": shown["cpuPeriod"]} == want

        assert daemon.stop() == 0
        daemon = start(tmp_path / "pycrid")
        assert linux_resources(daemon, cid) == shown  # from the record kept at update time

        crictl(daemon, "update", "--memory", str(32 * MiB), "--cpu-quota", "50000", cid)  # down and up
        assert cgroup_files(pid) == {**want, "memory": str(32 * MiB), "quota": "50000"}
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
    for controller in os.listdir("/sys/fs/cgroup"):
        top = Path("/sys/fs/cgroup", controller, parent.lstrip("/"))
        for d in (top, top.parent):
            if d.is_dir():
                d.rmdir()


def pod_files(parent: str) -> dict[str, str]:
    cpu, memory = Path("/sys/fs/cgroup/cpu", parent.lstrip("/")), Path("/sys/fs/cgroup/memory", parent.lstrip("/"))
    return {"shares": (cpu / "cpu.shares").read_text().strip(),
            "quota": (cpu / "cpu.cfs_quota_us").read_text().strip(),
            "period": (cpu / "cpu.cfs_period_us").read_text().strip(),
            "memory": (memory / "memory.limit_in_bytes").read_text().strip()}


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
        assert pod_files(pod_parent) == {"shares": "1024", "quota": "50000", "period": "100000",
                                         "memory": str(256 * MiB)}
        resize(512, 20000, 128 * MiB)
        assert pod_files(pod_parent) == {"shares": "512", "quota": "20000", "period": "100000",
                                         "memory": str(128 * MiB)}
        resources = recorded(pycrid, pod)
        assert (resources["cpu_shares"], resources["cpu_quota"], resources["memory_limit_in_bytes"]) == \
            (512, 20000, 128 * MiB)

        # The pod holds 32 MiB of tmpfs that no reclaim can free (no swap here): a limit below it
        # is the kernel's to refuse, and the resize with it, before anything is recorded.
        crictl(pycrid, "exec", "-s", cid, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=32")
        with pytest.raises(grpc.RpcError) as refused:
            resize(512, 20000, 8 * MiB)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
        assert pod_files(pod_parent)["memory"] == str(128 * MiB)
        assert recorded(pycrid, pod)["memory_limit_in_bytes"] == 128 * MiB
