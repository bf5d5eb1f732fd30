"""Slow calls share a budget smaller than the handler pool, so quick calls always get a thread;
the caller's deadline reaches the servicer. Over a real gRPC server on a unix socket."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri import server as grpc_server
from cri.admission import QUICK_RESERVE, remaining
from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc

WORKERS = QUICK_RESERVE + 2  # two slow calls at most


class Servicer:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.deadlines: list[float | None] = []

    def StopContainer(self, request: pb.StopContainerRequest) -> pb.StopContainerResponse:
        self.entered.release()
        self.release.wait(10)
        return pb.StopContainerResponse()

    def StartContainer(self, request: pb.StartContainerRequest) -> pb.StartContainerResponse:
        self.deadlines.append(remaining())
        return pb.StartContainerResponse()

    def Version(self, request: pb.VersionRequest) -> pb.VersionResponse:
        return pb.VersionResponse(runtime_name="fake")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Servicer, pb_grpc.RuntimeServiceStub]]:
    servicer = Servicer()
    server = grpc_server.build(servicer, object(), workers=WORKERS)
    socket = tmp_path / "cri.sock"
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    channel = grpc.insecure_channel(f"unix://{socket}")
    try:
        yield servicer, pb_grpc.RuntimeServiceStub(channel)
    finally:
        servicer.release.set()
        channel.close()
        server.stop(None).wait()


def test_slow_calls_beyond_their_budget_are_refused_and_quick_ones_still_answer(served) -> None:
    servicer, stub = served
    slow = [stub.StopContainer.future(pb.StopContainerRequest(container_id=f"c{i}", timeout=30))
            for i in range(WORKERS - QUICK_RESERVE)]
    for _ in slow:
        assert servicer.entered.acquire(timeout=5), "a slow call never started"
    with pytest.raises(grpc.RpcError) as refused:
        stub.StopContainer(pb.StopContainerRequest(container_id="one-too-many", timeout=30), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "slow calls" in refused.value.details()
    started = time.monotonic()
    for _ in range(QUICK_RESERVE * 2):
        assert stub.Version(pb.VersionRequest(), timeout=2).runtime_name == "fake"
    assert time.monotonic() - started < 2
    servicer.release.set()
    assert all(f.result(timeout=5) == pb.StopContainerResponse() for f in slow)
    stub.StopContainer(pb.StopContainerRequest(container_id="later", timeout=1), timeout=5)  # budget freed


def test_the_callers_deadline_reaches_the_servicer(served) -> None:
    servicer, stub = served
    stub.StartContainer(pb.StartContainerRequest(container_id="c"), timeout=7)
    stub.StartContainer(pb.StartContainerRequest(container_id="c"))
    (with_deadline, without) = servicer.deadlines
    assert with_deadline is not None and 5 < with_deadline < 7.5  # grpc rounds the deadline up
    assert without is None
