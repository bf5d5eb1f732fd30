"""Fixtures for cri.rpc: our gRPC server on a short unix socket path, grpcio channels to it, and a
check that every server's threads are gone once it stopped."""
from __future__ import annotations

import logging
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import grpc
import pytest

from cri.rpc.server import Method, Server

SERVER_THREADS = ("rpc-connection", "rpc-accept")
UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in SERVER_THREADS]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@dataclass
class Served:
    server: Server
    address: str  # unix://PATH
    path: str
    stopped: bool = False
    channels: list[grpc.Channel] = field(default_factory=list)

    def channel(self, **options: object) -> grpc.Channel:
        channel = grpc.insecure_channel(self.address, options=UNLIMITED + list(options.items()))
        self.channels.append(channel)
        return channel

    def stop(self, grace: float | None) -> threading.Event:
        self.stopped = True
        return self.server.stop(grace)



@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Short: a unix socket's path has room for 107 bytes, and pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="rpc", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(socket_dir: str, caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., Served]]:
    """Starts a Server on the given method table; stops it (if the test did not) and closes the
    test's channels at the end, then checks that the server's threads ended and that it logged no
    error but a handler's own exception."""
    assert not server_threads(), f"threads left by an earlier test: {server_threads()}"
    started: list[Served] = []

    def start(methods: Mapping[str, Method] | Server, workers: int = 4, max_receive: int = 4 << 20,
              max_send: int = 4 << 20) -> Served:
        server = methods if isinstance(methods, Server) else Server(methods, workers, max_receive, max_send)
        path = f"{socket_dir}/s{len(started)}.sock"
        assert server.add_insecure_port(f"unix://{path}") == 1
        server.start()
        served = Served(server, f"unix://{path}", path)
        started.append(served)
        return served

    yield start
    for served in started:
        for channel in served.channels:
            channel.close()
        if not served.stopped:
            assert served.stop(None).wait(5), "stop(None) did not finish"
    assert wait_until(lambda: not server_threads()), f"threads left after stop: {server_threads()}"
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    errors = [r for r in records if r.name == "pycrid.rpc" and r.levelno >= logging.ERROR and r.msg != "rpc %s raised"]
    assert not errors, f"the server logged: {[r.getMessage() for r in errors]}"


@pytest.fixture
def raw() -> Iterator[list[socket.socket]]:
    """Raw sockets the test opened, closed at its end."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads that switch every few microseconds, so a race between them shows in one run."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)
