"""cri/instrument.py reports every finished RPC (method, status code, seconds) to the observer, and
the phases an RPC marked to the phase observer."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri import server as grpc_server
from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc
from cri.instrument import Observed
from runtime import spans
from runtime.errors import NotFound
from runtime.spans import Span


class Runtime:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.phases: list[tuple[str, list[str]]] = []

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append((rpc, code))

    def observe_phases(self, rpc: str, phases: list[Span]) -> None:
        self.phases.append((rpc, [p.name for p in phases]))

    def Version(self, request):  # noqa: ANN001, ANN201
        return pb.VersionResponse(runtime_name="test")

    def StartContainer(self, request):  # noqa: ANN001, ANN201
        with spans.phase("cgroup"):
            pass
        with spans.phase("monitor"):
            pass
        return pb.StartContainerResponse()

    def ContainerStatus(self, request):  # noqa: ANN001, ANN201
        with spans.phase("lookup"):
            raise NotFound("container x")

    def StreamContainers(self, request):  # noqa: ANN001, ANN201
        yield pb.StreamContainersResponse()


class Images:
    def ImageFsInfo(self, request):  # noqa: ANN001, ANN201
        return pb.ImageFsInfoResponse()


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[tuple[grpc.Channel, Runtime, list]]:
    runtime, image_calls = Runtime(), []
    images = Observed(Images(), lambda rpc, code, s: image_calls.append((rpc, code)))
    server = grpc_server.build(runtime, images, workers=2)
    address = f"unix://{tmp_path}/cri.sock"
    assert server.add_insecure_port(address)
    server.start()
    with grpc.insecure_channel(address) as ch:
        yield ch, runtime, image_calls
    server.stop(None).wait()


def test_every_rpc_is_observed_with_its_code(channel) -> None:  # noqa: ANN001
    ch, runtime, image_calls = channel
    stub = api_pb2_grpc.RuntimeServiceStub(ch)
    stub.Version(pb.VersionRequest())
    with pytest.raises(grpc.RpcError):
        stub.ContainerStatus(pb.ContainerStatusRequest(container_id="x"))
    list(stub.StreamContainers(pb.StreamContainersRequest()))
    with pytest.raises(grpc.RpcError):
        stub.ListContainers(pb.ListContainersRequest())  # not defined: UNIMPLEMENTED
    api_pb2_grpc.ImageServiceStub(ch).ImageFsInfo(pb.ImageFsInfoRequest())
    assert runtime.seen == [("Version", "OK"), ("ContainerStatus", "NOT_FOUND"), ("StreamContainers", "OK"),
                            ("ListContainers", "UNIMPLEMENTED")]
    assert image_calls == [("ImageFsInfo", "OK")]


def test_the_phases_an_rpc_marked_are_observed_also_when_it_fails(channel) -> None:  # noqa: ANN001
    ch, runtime, _ = channel
    stub = api_pb2_grpc.RuntimeServiceStub(ch)
    stub.Version(pb.VersionRequest())  # marks none: nothing to observe
    stub.StartContainer(pb.StartContainerRequest(container_id="c"))
    with pytest.raises(grpc.RpcError):
        stub.ContainerStatus(pb.ContainerStatusRequest(container_id="x"))
    stub.StartContainer(pb.StartContainerRequest(container_id="c"))  # a new recording per call
    assert runtime.phases == [("StartContainer", ["cgroup", "monitor"]), ("ContainerStatus", ["lookup"]),
                              ("StartContainer", ["cgroup", "monitor"])]
