"""What a container's CPU and memory resources become in its cgroup's files, for either cgroup
version, and where those files are on the node given the container's cgroup path."""
from __future__ import annotations

from pathlib import Path

from runtime.cgroups.resources import shares_to_weight
from tests.cluster.client import Cluster

CFS_PERIOD = 100000


def expected(version: str, cpu_limit_milli: int, memory_limit: int, cpu_request_milli: int) -> dict[str, str]:
    """File name (v1: controller/knob) to content, as the kubelet's conversion and the runtime write them."""
    quota = cpu_limit_milli * CFS_PERIOD // 1000
    shares = cpu_request_milli * 1024 // 1000
    if version == "v1":
        return {"memory/memory.limit_in_bytes": str(memory_limit), "cpu/cpu.cfs_quota_us": str(quota),
                "cpu/cpu.cfs_period_us": str(CFS_PERIOD), "cpu/cpu.shares": str(shares)}
    return {"memory.max": str(memory_limit), "cpu.max": f"{quota} {CFS_PERIOD}",
            "cpu.weight": str(shares_to_weight(shares))}


def node_file(version: str, cgroup: str, name: str) -> Path:
    if version == "v1":
        controller, knob = name.split("/")
        return Path("/sys/fs/cgroup", controller, cgroup.lstrip("/"), knob)
    return Path("/sys/fs/cgroup", cgroup.lstrip("/"), name)


def read_on_node(version: str, cgroup: str, names: list[str]) -> dict[str, str]:
    return {name: node_file(version, cgroup, name).read_text().strip() for name in names}


def container_cgroup(cluster: Cluster, namespace: str, pod_name: str) -> str:
    """The pod's (first) container's own cgroup on the node (cgroupfs driver: named by its ID) in
    the pod's, below the kubelet's kubepods tree and so below the cluster's cgroup root; the pod is
    Burstable."""
    pod = cluster.pod(namespace, pod_name)
    container_id = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("pycrid://")
    return f"{cluster.layout.cgroup_root}/kubepods/burstable/pod{pod['metadata']['uid']}/{container_id}"
