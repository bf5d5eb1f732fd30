"""Exec, Attach and PortForward: each checks its request and hands out a single-use URL on the
streaming server (cri/streaming/), where the client then streams; ExecSync lives in containers.py."""
from __future__ import annotations

from typing import Protocol

from cri.api.v1 import api_pb2 as pb
from cri.managers import Containers
from cri.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest, StreamRequest
from runtime.container.record import State
from runtime.errors import FailedPrecondition, InvalidArgument, Unavailable
from runtime.sandbox.manager import SandboxManager


class StreamingUrls(Protocol):
    def url(self, request: StreamRequest) -> str: ...


class StreamingRpcs:
    sandboxes: SandboxManager
    containers: Containers
    streaming: StreamingUrls | None

    def Exec(self, request: pb.ExecRequest) -> pb.ExecResponse:
        if not request.cmd:
            raise InvalidArgument("exec: the command is empty")
        if request.tty and request.stderr:
            raise InvalidArgument("exec: tty and stderr cannot both be set (a terminal has one output)")
        _one_stream(request.stdin, request.stdout, request.stderr, "exec")
        c = self._running(request.container_id)
        return pb.ExecResponse(url=self._urls().url(ExecRequest(
            c, request.tty, request.stdin, request.stdout, request.stderr, tuple(request.cmd))))

    def Attach(self, request: pb.AttachRequest) -> pb.AttachResponse:
        _one_stream(request.stdin, request.stdout, request.stderr, "attach")
        c = self._running(request.container_id)
        return pb.AttachResponse(url=self._urls().url(AttachRequest(
            c, request.tty, request.stdin, request.stdout, request.stderr)))

    def PortForward(self, request: pb.PortForwardRequest) -> pb.PortForwardResponse:
        sandbox = self.sandboxes.require_ready(request.pod_sandbox_id)
        for port in request.port:
            if not 0 < port < 65536:
                raise InvalidArgument(f"port-forward to sandbox {sandbox.id}: port {port} is not a TCP port")
        return pb.PortForwardResponse(url=self._urls().url(PortForwardRequest(sandbox.id, tuple(request.port))))

    def _running(self, container_id: str) -> str:
        c = self.containers.get(container_id)
        if c.state != State.RUNNING:
            raise FailedPrecondition(f"container {c.id} is {c.state.name.lower()}, not running")
        return c.id

    def _urls(self) -> StreamingUrls:
        if self.streaming is None:
            raise Unavailable("the streaming server is not running")
        return self.streaming


def _one_stream(stdin: bool, stdout: bool, stderr: bool, what: str) -> None:
    if not (stdin or stdout or stderr):
        raise InvalidArgument(f"{what}: one of stdin, stdout or stderr must be set")
