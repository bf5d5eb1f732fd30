"""The runtime's container states and namespace modes as the CRI enums in statuses and lists."""
from __future__ import annotations

from dataclasses import replace

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.containers import ContainerRpcs, container_status
from cri.sandboxes import sandbox_status
from runtime.container.model import ContainerConfig, NamespaceMode
from runtime.container.record import Container, State
from runtime.process.initspec import InitSpec
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.record import Sandbox

_SPEC = InitSpec(id="c1", args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")
_CREATED = Container("c1", "p1", ContainerConfig(name="app", attempt=0, image="busybox"), image_id="sha256:1",
                     image_ref="busybox", spec=_SPEC, cgroup="/pycrid/c1", created_at=1)
_IN_STATE = {
    State.CREATED: _CREATED,
    State.RUNNING: replace(_CREATED, id="c2", started_at=2),
    State.EXITED: replace(_CREATED, id="c3", started_at=2, finished_at=3),
    State.UNKNOWN: replace(_CREATED, id="c4", unknown=True),
}
_PATHS = SandboxPaths(dir="/run/pycrid/sandboxes/p1", netns="", ipcns="", utsns="", pidns="", hosts="",
                      resolv_conf="", hostname="", shm="")


class Listed:
    def __init__(self, containers: list[Container]) -> None:
        self._containers = containers

    def list(self) -> list[Container]:
        return self._containers


@pytest.mark.parametrize("state", list(State))
def test_a_container_state_is_the_cri_state_of_that_name(state: State) -> None:
    c = _IN_STATE[state]
    assert c.state is state
    assert pb.ContainerState.Name(container_status(c).state) == f"CONTAINER_{state.name}"


@pytest.mark.parametrize("state", list(State))
def test_list_containers_filters_by_the_cri_state(state: State) -> None:
    rpcs = ContainerRpcs()
    rpcs.containers = Listed(list(_IN_STATE.values()))  # ListContainers calls only list()
    wanted = pb.ContainerStateValue(state=pb.ContainerState.Value(f"CONTAINER_{state.name}"))
    listed = rpcs.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(state=wanted)))
    assert [(c.id, c.state) for c in listed.containers] == [(_IN_STATE[state].id, wanted.state)]


@pytest.mark.parametrize("mode", list(NamespaceMode))
def test_a_pod_namespace_mode_is_the_cri_mode_of_that_name(mode: NamespaceMode) -> None:
    config = SandboxConfig(name="web", uid="u-1", namespace="default", network_mode=mode, pid_mode=mode,
                           ipc_mode=mode)
    options = sandbox_status(Sandbox("p1", config, _PATHS, created_at=1)).linux.namespaces.options
    assert {pb.NamespaceMode.Name(m) for m in (options.network, options.pid, options.ipc)} == {mode.name}


def test_a_pod_is_ready_until_stopped() -> None:
    ready = Sandbox("p1", SandboxConfig(name="web", uid="u-1", namespace="default"), _PATHS, created_at=1)
    assert sandbox_status(ready).state == pb.SANDBOX_READY
    assert sandbox_status(replace(ready, stopped_at=2)).state == pb.SANDBOX_NOTREADY
