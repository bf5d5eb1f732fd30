from __future__ import annotations

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc
from cri.errors import STATUS_OF, status_of
from cri.rpc.status import StatusCode
from runtime import errors


class Raising:
    """A servicer whose RPCs raise what the test asks for."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def ContainerStatus(self, request):
        raise self.exc

    def StreamContainers(self, request):
        yield pb.StreamContainersResponse()
        raise self.exc


@pytest.mark.parametrize("exc_class", sorted(STATUS_OF, key=lambda c: c.__name__))
def test_each_domain_error_becomes_its_status(serve, exc_class) -> None:
    stub = api_pb2_grpc.RuntimeServiceStub(serve(Raising(exc_class('container "abc"')), object()))
    with pytest.raises(grpc.RpcError) as err:
        stub.ContainerStatus(pb.ContainerStatusRequest(container_id="abc"))
    assert err.value.code().name == STATUS_OF[exc_class].name
    assert err.value.details() == 'ContainerStatus: container "abc"'


def test_unexpected_errors_are_internal_and_named(serve) -> None:
    stub = api_pb2_grpc.RuntimeServiceStub(serve(Raising(KeyError("boom")), object()))
    with pytest.raises(grpc.RpcError) as err:
        stub.ContainerStatus(pb.ContainerStatusRequest(container_id="abc"))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "ContainerStatus" in err.value.details() and "KeyError" in err.value.details()


def test_streaming_errors_are_mapped_after_partial_output(serve) -> None:
    stub = api_pb2_grpc.RuntimeServiceStub(serve(Raising(errors.NotFound("pod x")), object()))
    stream = stub.StreamContainers(pb.StreamContainersRequest())
    assert next(stream) == pb.StreamContainersResponse()
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_subclasses_map_through_their_base() -> None:
    class MissingLayer(errors.NotFound):
        pass
    assert status_of(MissingLayer("x")) == StatusCode.NOT_FOUND
    assert status_of(ValueError("x")) == StatusCode.INTERNAL
