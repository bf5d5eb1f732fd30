"""CRI v1 over gRPC on pycrid's unix socket, with the generated stubs: one call in, one Answer out.

The channel reconnects fast (backoff capped at half a second) so that after an agent restart the
first calls do not fail on a client still backing off; the harness's outage windows allow for that
half second. Each connection attempt still gets two seconds to complete its HTTP/2 handshake (gRPC
takes that limit from min_reconnect_backoff_ms): with 50 ms, an agent slow to answer on a loaded
machine failed the very first call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from cri.api.v1 import api_pb2_grpc
from tests.stress.verdicts import Answer

RECONNECT_SECONDS = 0.5
CONNECT_SECONDS = 2.0
IMAGE_METHODS = frozenset({"PullImage", "ImageStatus", "RemoveImage", "ListImages", "ImageFsInfo"})
STREAMING = frozenset({"StreamPodSandboxes", "StreamContainers"})
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", int(CONNECT_SECONDS * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(RECONNECT_SECONDS * 1000))]


@dataclass(frozen=True)
class Reply:
    answer: Answer
    response: Any  # the response message (a list of them for a stream), None unless OK


class CriClient:
    def __init__(self, socket: Path) -> None:
        self._channel = grpc.insecure_channel(f"unix://{socket}", options=_OPTIONS)
        self._runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)
        self._images = api_pb2_grpc.ImageServiceStub(self._channel)

    def call(self, method: str, request: Any, timeout: float) -> Reply:
        stub = self._images if method in IMAGE_METHODS else self._runtime
        started = time.monotonic()
        try:
            response = getattr(stub, method)(request, timeout=timeout)
            if method in STREAMING:
                response = list(response)
        except grpc.RpcError as e:
            code, message = e.code(), e.details() or ""
            return Reply(Answer(method, code.name, message, started, time.monotonic()), None)
        return Reply(Answer(method, "OK", "", started, time.monotonic()), response)

    def close(self) -> None:
        self._channel.close()
