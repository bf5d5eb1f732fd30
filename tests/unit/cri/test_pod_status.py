"""PodSandboxStatus answers with a timestamp and the statuses of the pod's containers: a kubelet
running EventedPLEG takes the pod's containers from this response alone."""
from __future__ import annotations

from dataclasses import replace

from cri.api.v1 import api_pb2 as pb
from cri.sandboxes import SandboxRpcs
from runtime.container.model import ContainerConfig
from runtime.container.record import Container
from runtime.process.initspec import InitSpec
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.record import Sandbox

_PATHS = SandboxPaths(dir="/run/pycrid/sandboxes/p1", netns="", ipcns="", utsns="", pidns="", hosts="",
                      resolv_conf="", hostname="", shm="")
POD = Sandbox("p1", SandboxConfig(name="web", uid="u-1", namespace="default"), _PATHS, created_at=1)
_SPEC = InitSpec(id="c1", args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")
APP = Container("c1", "p1", ContainerConfig(name="app", attempt=2, image="busybox"), image_id="sha256:1",
                image_ref="busybox", spec=_SPEC, cgroup="/pycrid/c1", created_at=5, started_at=6)
OTHER = replace(APP, id="c2", sandbox_id="p2")


class Sandboxes:
    def get(self, sandbox_id: str) -> Sandbox:
        return POD


class Containers:
    def in_pod(self, sandbox_id: str) -> list[Container]:
        return [c for c in (APP, OTHER) if c.sandbox_id == sandbox_id]


def test_the_pod_status_lists_its_containers_and_is_timestamped() -> None:
    rpcs = SandboxRpcs()
    rpcs.sandboxes, rpcs.containers = Sandboxes(), Containers()  # type: ignore[assignment]
    response = rpcs.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id="p1"))
    assert response.timestamp > 0
    assert [(c.id, c.metadata.name, c.metadata.attempt, c.state) for c in response.containers_statuses] == [
        ("c1", "app", 2, pb.CONTAINER_RUNNING)]
