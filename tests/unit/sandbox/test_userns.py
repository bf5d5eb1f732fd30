"""User namespace decisions: what a pod and a container may ask, and the id arithmetic."""
from __future__ import annotations

import pytest

from runtime.container.model import IdMapping, NamespaceMode, UserNamespace, UsernsOptions
from runtime.container.users import Identity
from runtime.errors import InvalidArgument
from runtime.sandbox.userns import (
    check_container,
    container_identity,
    container_user_namespace,
    map_line,
    mount_idmapped,
    pause_id,
    pod_user_namespace,
    root_owner,
    to_container,
    to_host,
)

POD, NODE = NamespaceMode.POD, NamespaceMode.NODE
M = IdMapping(0, 100000, 65536)
G = IdMapping(0, 200000, 65536)
USERNS = UserNamespace(M, G)


def pod(opts: UsernsOptions | None, network: NamespaceMode = POD, pid: NamespaceMode = POD,
        ipc: NamespaceMode = POD, privileged: bool = False) -> UserNamespace | None:
    return pod_user_namespace(opts, network=network, pid=pid, ipc=ipc, privileged=privileged, who="pod ns/web")


@pytest.mark.parametrize("opts, want", [
    (None, None),
    (UsernsOptions(NODE), None),
    (UsernsOptions(POD, (M,), (G,)), USERNS),
    (UsernsOptions(POD, (IdMapping(0, 1000, 100000),), (IdMapping(0, 1000, 100000),)),
     UserNamespace(IdMapping(0, 1000, 100000), IdMapping(0, 1000, 100000))),
    (UsernsOptions(POD, (IdMapping(0, 4294967294, 1),), (IdMapping(0, 1, 4294967294),)),  # the largest ranges
     UserNamespace(IdMapping(0, 4294967294, 1), IdMapping(0, 1, 4294967294))),
])
def test_pod_accepted(opts, want) -> None:
    assert pod(opts) == want


@pytest.mark.parametrize("opts, message", [
    (UsernsOptions(NamespaceMode.CONTAINER), "pod ns/web: user namespace mode CONTAINER is not supported"),
    (UsernsOptions(NamespaceMode.TARGET), "pod ns/web: user namespace mode TARGET is not supported"),
    (UsernsOptions(NODE, (M,), (G,)), "mode NODE takes no mappings \\(got 1 uid and 1 gid"),
    (UsernsOptions(POD), "exactly one uid mapping, got 0"),
    (UsernsOptions(POD, (M,)), "exactly one gid mapping, got 0"),
    (UsernsOptions(POD, (M, IdMapping(0, 2000, 100000)), (G, G)), "exactly one uid mapping, got 2"),
    (UsernsOptions(POD, (M,), (G, G)), "exactly one gid mapping, got 2"),
    (UsernsOptions(POD, (IdMapping(1, 1000, 100000),), (G,)), "uid mapping 1:1000:100000 does not map container id 0"),
    (UsernsOptions(POD, (M,), (IdMapping(5, 1000, 10),)), "gid mapping 5:1000:10 does not map container id 0"),
    (UsernsOptions(POD, (IdMapping(0, 1000, 0),), (G,)), "uid mapping 0:1000:0: the length must be at least 1"),
    (UsernsOptions(POD, (IdMapping(0, 4294967295, 1),), (G,)), "runs past the largest id"),
    (UsernsOptions(POD, (M,), (IdMapping(0, 1, 4294967295),)), "gid mapping 0:1:4294967295: runs past"),
])
def test_pod_refused(opts, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        pod(opts)


@pytest.mark.parametrize("kw, message", [
    ({"network": NODE}, "a pod with a user namespace cannot use the node's network namespace"),
    ({"pid": NODE}, "a pod with a user namespace cannot use the node's PID namespace"),
    ({"ipc": NODE}, "a pod with a user namespace cannot use the node's IPC namespace"),
    ({"privileged": True}, "a privileged pod cannot have a user namespace"),
])
def test_pod_with_a_user_namespace_refuses_node_namespaces_and_privilege(kw, message) -> None:
    with pytest.raises(InvalidArgument, match=f"pod ns/web: {message}"):
        pod(UsernsOptions(POD, (M,), (G,)), **kw)
    pod(UsernsOptions(NODE), **kw)  # without one, all of those are fine


@pytest.mark.parametrize("opts, pod_ns, want", [
    (None, USERNS, USERNS),  # not given: the pod's
    (None, None, None),
    (UsernsOptions(POD, (M,), (G,)), USERNS, USERNS),
    (UsernsOptions(NODE), None, None),
])
def test_container_is_in_its_pods(opts, pod_ns, want) -> None:
    assert container_user_namespace(opts, pod_ns, "container 'app'") == want


@pytest.mark.parametrize("opts, pod_ns, message", [
    (UsernsOptions(NODE), USERNS, "container 'app': its user namespace \\(the node's user namespace\\) differs from "
                                  "its pod's \\(uids 0:100000:65536 gids 0:200000:65536\\)"),
    (UsernsOptions(POD, (M,), (G,)), None, "differs from its pod's \\(the node's user namespace\\)"),
    (UsernsOptions(POD, (IdMapping(0, 100000, 65537),), (G,)), USERNS, "uids 0:100000:65537 .* differs"),
    (UsernsOptions(POD, (M,), (M,)), USERNS, "gids 0:100000:65536\\) differs"),
    (UsernsOptions(NamespaceMode.CONTAINER), USERNS, "container 'app': user namespace mode CONTAINER"),
    (UsernsOptions(NamespaceMode.TARGET), None, "container 'app': user namespace mode TARGET"),
    (UsernsOptions(POD, (IdMapping(3, 100000, 65536),), (G,)), USERNS, "does not map container id 0"),
])
def test_container_refused(opts, pod_ns, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        container_user_namespace(opts, pod_ns, "container 'app'")


def test_container_in_a_user_namespace_is_not_privileged_nor_in_the_host_pid_namespace() -> None:
    with pytest.raises(InvalidArgument, match="'app': a privileged container cannot run in a user namespace"):
        check_container(USERNS, privileged=True, host_pid=False, who="container 'app'")
    with pytest.raises(InvalidArgument, match="'app': .* cannot use the node's PID namespace"):
        check_container(USERNS, privileged=False, host_pid=True, who="container 'app'")
    check_container(None, privileged=True, host_pid=True, who="container 'app'")
    check_container(USERNS, privileged=False, host_pid=False, who="container 'app'")


def test_mount_is_idmapped_only_with_the_pods_own_mappings() -> None:
    assert mount_idmapped((), (), USERNS, "mount at '/v'") is False
    assert mount_idmapped((), (), None, "mount at '/v'") is False
    assert mount_idmapped((M,), (G,), USERNS, "mount at '/v'") is True
    with pytest.raises(InvalidArgument, match="mount at '/v': an id-mapped mount needs a pod with a user namespace"):
        mount_idmapped((M,), (G,), None, "mount at '/v'")
    for uids, gids in (((M,), (M,)), ((M,), ()), ((M, M), (G,)), ((IdMapping(0, 5, 65536),), (G,))):
        with pytest.raises(InvalidArgument, match="mount at '/v': id mappings differ from the pod's"):
            mount_idmapped(uids, gids, USERNS, "mount at '/v'")


def test_id_arithmetic() -> None:
    assert map_line(M) == "0 100000 65536\n"
    assert (to_host(M, 0), to_host(M, 65535)) == (100000, 165535)
    assert (to_container(M, 100000), to_container(M, 165535)) == (0, 65535)
    for bad in (-1, 65536):
        with pytest.raises(InvalidArgument, match=f"id {bad} is not mapped by 0 100000 65536"):
            to_host(M, bad)
    for bad in (99999, 165536, 0):
        with pytest.raises(InvalidArgument, match=f"host id {bad} is not mapped"):
            to_container(M, bad)
    assert root_owner(USERNS) == (100000, 200000)
    assert container_identity(USERNS, Identity(101000, 200005, (200005, 201234), "/home/x")) == \
        Identity(1000, 5, (5, 1234), "/home/x")


@pytest.mark.parametrize("userns, want", [
    (None, 65535),
    (USERNS, 65535),
    (UserNamespace(IdMapping(0, 1000, 100000), IdMapping(0, 1000, 100000)), 65535),
    (UserNamespace(IdMapping(0, 1000, 1000), IdMapping(0, 5000, 65536)), 999),
    (UserNamespace(IdMapping(0, 1000, 1), IdMapping(0, 5000, 1)), 0),
])
def test_pause_id(userns, want) -> None:
    assert pause_id(userns) == want
