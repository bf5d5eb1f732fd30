"""The CRI's UserNamespace on a pod: the requests critest's "Security Context UserNamespaces"
specs send, accepted or refused with INVALID_ARGUMENT naming the pod."""
from __future__ import annotations

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.convert_sandbox import sandbox_config
from runtime.container.model import IdMapping, UserNamespace
from runtime.errors import InvalidArgument

CRITEST = [pb.IDMapping(container_id=0, host_id=1000, length=100000)]


def pod(userns: pb.UserNamespace, **namespaces: int) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="user-namespaces-pod", uid="u", namespace="ns"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(userns_options=userns, **namespaces))))


def test_mode_pod_with_one_mapping_each() -> None:
    config = sandbox_config(pod(pb.UserNamespace(mode=pb.POD, uids=CRITEST, gids=CRITEST)), "")
    assert config.userns == UserNamespace(IdMapping(0, 1000, 100000), IdMapping(0, 1000, 100000))


def test_mode_node_and_no_options_are_the_nodes() -> None:
    assert sandbox_config(pod(pb.UserNamespace(mode=pb.NODE)), "").userns is None
    no_options = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="ns"))
    assert sandbox_config(no_options, "").userns is None


@pytest.mark.parametrize("userns, message", [
    # critest: "runtime should fail if more than one mapping provided"
    (pb.UserNamespace(mode=pb.POD, uids=[*CRITEST, pb.IDMapping(host_id=2000, length=100000)],
                      gids=[*CRITEST, pb.IDMapping(host_id=2000, length=100000)]),
     "exactly one uid mapping, got 2"),
    # critest: "runtime should fail if container ID 0 is not mapped"
    (pb.UserNamespace(mode=pb.POD, uids=[pb.IDMapping(container_id=1, host_id=1000, length=100000)],
                      gids=[pb.IDMapping(container_id=1, host_id=1000, length=100000)]),
     "uid mapping 1:1000:100000 does not map container id 0"),
    # critest: "runtime should fail with NamespaceMode_CONTAINER" / "..._TARGET"
    (pb.UserNamespace(mode=pb.CONTAINER), "user namespace mode CONTAINER is not supported"),
    (pb.UserNamespace(mode=pb.TARGET), "user namespace mode TARGET is not supported"),
    (pb.UserNamespace(mode=pb.POD), "exactly one uid mapping, got 0"),
    (pb.UserNamespace(mode=pb.POD, uids=CRITEST), "exactly one gid mapping, got 0"),
    (pb.UserNamespace(mode=pb.NODE, uids=CRITEST, gids=CRITEST), "mode NODE takes no mappings"),
    (pb.UserNamespace(mode=pb.POD, uids=[pb.IDMapping(host_id=1000)], gids=CRITEST), "length must be at least 1"),
    (pb.UserNamespace(mode=pb.POD, uids=CRITEST, gids=[pb.IDMapping(host_id=4294967295, length=1)]),
     "gid mapping 0:4294967295:1: runs past"),
])
def test_refused(userns, message) -> None:
    with pytest.raises(InvalidArgument, match=f"^pod ns/user-namespaces-pod: .*{message}"):
        sandbox_config(pod(userns), "")


@pytest.mark.parametrize("namespaces, kind", [({"network": pb.NODE}, "network"), ({"pid": pb.NODE}, "PID"),
                                              ({"ipc": pb.NODE}, "IPC")])
def test_refused_with_a_node_namespace(namespaces, kind) -> None:
    with pytest.raises(InvalidArgument, match=f"cannot use the node's {kind} namespace"):
        sandbox_config(pod(pb.UserNamespace(mode=pb.POD, uids=CRITEST, gids=CRITEST), **namespaces), "")
