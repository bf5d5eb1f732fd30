"""In-place resize of a running pod's container (`kubectl patch --subresource resize`), up and then
down: the kubelet asks pycrid (UpdateContainerResources), the new limits are in the container's
cgroup on the node, the pod's status reports them, and the container was not restarted."""
from __future__ import annotations

import json
from functools import partial
from typing import Any

from runtime.cgroups.manager import detect
from tests.cluster import cgroup_files
from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually


def resources(cpu_limit: int, memory_limit_mi: int, cpu_request: int, memory_request_mi: int) -> dict[str, Any]:
    return {"limits": {"cpu": f"{cpu_limit}m", "memory": f"{memory_limit_mi}Mi"},
            "requests": {"cpu": f"{cpu_request}m", "memory": f"{memory_request_mi}Mi"}}


def resized(cluster: Cluster, namespace: str, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The pod once the kubelet has applied ``wanted`` (its status shows them, no resize pending)."""
    pod = cluster.pod(namespace, "resized")
    pending = [c for c in pod["status"].get("conditions", ())
               if c["type"] in ("PodResizePending", "PodResizeInProgress")]
    status = pod["status"]["containerStatuses"][0]
    return pod if not pending and status.get("resources") == wanted else None


# (CPU limit m, memory limit Mi, CPU request m, memory request Mi): from 200m/100Mi (100m/50Mi)
# up, then down below where it started; the pod stays Burstable throughout.
STEPS = [(400, 200, 200, 100), (100, 64, 50, 32)]


def test_resize_up_and_down_reaches_the_containers_cgroup(cluster: Cluster, namespace: str) -> None:
    version = detect()
    cluster.apply(m.pod(namespace, "resized", m.container("app", m.IDLE, resources=resources(200, 100, 100, 50))))
    cluster.wait_ready(namespace, "pod/resized")
    first = cluster.pod(namespace, "resized")["status"]["containerStatuses"][0]
    cgroup = cgroup_files.container_cgroup(cluster, namespace, "resized")
    for cpu_limit, memory_limit, cpu_request, memory_request in STEPS:
        wanted = resources(cpu_limit, memory_limit, cpu_request, memory_request)
        patch = {"spec": {"containers": [{"name": "app", "resources": wanted}]}}
        cluster.kubectl("-n", namespace, "patch", "pod", "resized", "--subresource", "resize", "--patch",
                        json.dumps(patch))
        pod = eventually(f"the resize to {wanted}", partial(resized, cluster, namespace, wanted), 60,
                         lambda: json.dumps(cluster.pod(namespace, "resized")["status"], indent=1))
        files = cgroup_files.expected(version, cpu_limit, memory_limit << 20, cpu_request)
        assert cgroup_files.read_on_node(version, cgroup, list(files)) == files, wanted
        status = pod["status"]["containerStatuses"][0]
        assert (status["containerID"], status["restartCount"]) == (first["containerID"], 0)
