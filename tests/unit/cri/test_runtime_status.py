from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc
from cri.config import Config, NetworkConfig
from cri.image_service import ImageService
from runtime.image import ImageManager
from runtime.linux.idmap import IdmapSupport
from cri.status import StatusRpcs
from runtime.network.plugin import NetworkStatus
from runtime.network.testing import FakeNetworkPlugin
from runtime.process.supervisor import HelperState
from runtime.version import VERSION


@pytest.fixture
def runtime(serve, tmp_path):
    config = Config(root=str(tmp_path / "root"), state=str(tmp_path / "state"),
                    network=NetworkConfig(pod_cidr="10.88.0.0/16"))
    (tmp_path / "root").mkdir()
    (tmp_path / "state").mkdir()
    network = FakeNetworkPlugin("10.88.0.0/16")
    channel = serve(StatusRpcs(config, network), ImageService(ImageManager(str(tmp_path / "images")),
                                                                              container_dir=str(tmp_path / "root"),
                                                                              in_use=lambda image_id: False))
    return api_pb2_grpc.RuntimeServiceStub(channel), channel, tmp_path, network


def test_version_names_pycrid(runtime) -> None:
    stub, _, _, _ = runtime
    v = stub.Version(pb.VersionRequest(version="0.1.0"))
    assert (v.runtime_name, v.runtime_version, v.runtime_api_version) == ("pycrid", VERSION, "v1")
    assert v.version


def test_status_reports_both_conditions_and_verbose_config(runtime) -> None:
    stub, _, _, _ = runtime
    status = stub.Status(pb.StatusRequest(verbose=True))
    conditions = {c.type: c for c in status.status.conditions}
    assert conditions["RuntimeReady"].status and conditions["NetworkReady"].status
    config = json.loads(status.info["config"])
    assert config["network"]["pod_cidr"] == "10.88.0.0/16"
    assert [h.name for h in status.runtime_handlers] == [""]
    assert not stub.Status(pb.StatusRequest()).info


def test_runtime_not_ready_when_state_dir_is_gone(runtime) -> None:
    stub, _, tmp_path, _ = runtime
    (tmp_path / "state").rmdir()
    conditions = {c.type: c for c in stub.Status(pb.StatusRequest()).status.conditions}
    ready = conditions["RuntimeReady"]
    assert not ready.status and ready.reason and "state" in ready.message


def test_runtime_config_reports_the_cgroup_driver(runtime) -> None:
    stub, _, _, _ = runtime
    assert stub.RuntimeConfig(pb.RuntimeConfigRequest()).linux.cgroup_driver == pb.CGROUPFS


def test_update_runtime_config_keeps_the_pod_cidr(runtime) -> None:
    stub, _, _, _ = runtime
    request = pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.244.1.0/24")))
    stub.UpdateRuntimeConfig(request)
    stub.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest())  # empty: no change
    info = json.loads(stub.Status(pb.StatusRequest(verbose=True)).info["network"])
    assert info["podCIDR"] == "10.244.1.0/24"


def test_update_runtime_config_rejects_a_bad_cidr(runtime) -> None:
    stub, _, _, _ = runtime
    request = pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.244.1.0/33")))
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateRuntimeConfig(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10.244.1.0/33" in err.value.details()


def test_unimplemented_rpcs_answer_unimplemented_naming_the_rpc(runtime) -> None:
    """pycrid's servicers define all 41 RPCs; this one serves only StatusRpcs, so the others show
    what a servicer without an RPC answers (cri/instrument.py)."""
    stub, channel, _, _ = runtime
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="x"))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "UpdatePodSandboxResources" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(stub.GetContainerEvents(pb.GetEventsRequest()))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetContainerEvents" in err.value.details()


def test_health_service_serves(runtime) -> None:
    _, channel, _, _ = runtime
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "runtime.v1.RuntimeService", "runtime.v1.ImageService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_network_not_ready_carries_reason_and_message(runtime) -> None:
    stub, _, _, network = runtime
    network.ready = NetworkStatus(False, "NetworkPluginNotReady", "no network config found in /etc/cni/net.d")
    conditions = {c.type: c for c in stub.Status(pb.StatusRequest()).status.conditions}
    net = conditions["NetworkReady"]
    assert not net.status and net.reason == "NetworkPluginNotReady" and "/etc/cni/net.d" in net.message
    assert conditions["RuntimeReady"].status


def test_runtime_is_not_ready_while_the_fork_server_is_down(tmp_path) -> None:
    """New pods and pulls need the fork server: while it is down (and cannot be restarted), the
    kubelet is told so instead of seeing every RunPodSandbox fail."""
    config = Config(root=str(tmp_path), state=str(tmp_path))
    down = HelperState(False, "the fork server is down since ...: restarting it failed: no space left")
    status = StatusRpcs(config, FakeNetworkPlugin("10.88.0.0/16"), helpers=lambda: down).Status(pb.StatusRequest())
    runtime_ready = {c.type: c for c in status.status.conditions}["RuntimeReady"]
    assert (runtime_ready.status, runtime_ready.reason) == (False, "ForkServerDown")
    assert "no space left" in runtime_ready.message


@pytest.mark.parametrize("idmap, supported", [(IdmapSupport(), True), (IdmapSupport("id-mapping /x: no"), False)])
def test_the_handler_says_whether_it_runs_user_namespaces(serve, tmp_path, idmap, supported) -> None:
    config = Config(root=str(tmp_path), state=str(tmp_path))
    stub = api_pb2_grpc.RuntimeServiceStub(serve(StatusRpcs(config, FakeNetworkPlugin("10.88.0.0/16"), idmap=idmap),
                                                 ImageService(ImageManager(str(tmp_path / "images")),
                                                              container_dir=str(tmp_path), in_use=lambda i: False)))
    (handler,) = stub.Status(pb.StatusRequest()).runtime_handlers
    assert (handler.name, handler.features.user_namespaces) == ("", supported)


@pytest.mark.parametrize("kernel_has_mount_setattr", [True, False])
def test_recursive_read_only_mounts_are_advertised_only_where_the_kernel_has_mount_setattr(
        tmp_path, kernel_has_mount_setattr: bool) -> None:
    config = Config(root=str(tmp_path), state=str(tmp_path))
    rpcs = StatusRpcs(config, FakeNetworkPlugin("10.88.0.0/16"), recursive_read_only_mounts=kernel_has_mount_setattr)
    (handler,) = rpcs.Status(pb.StatusRequest()).runtime_handlers
    assert (handler.name, handler.features.recursive_read_only_mounts) == ("", kernel_has_mount_setattr)


def test_supplemental_groups_policy_is_advertised(tmp_path) -> None:
    """Strict and Merge are honoured, and ContainerStatus.user reported: what the feature promises."""
    config = Config(root=str(tmp_path), state=str(tmp_path))
    status = StatusRpcs(config, FakeNetworkPlugin("10.88.0.0/16")).Status(pb.StatusRequest())
    assert status.features.supplemental_groups_policy is True
