from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from types import FrameType

import pytest
from wsproto.events import AcceptConnection

from cri.streaming import websocket
from cri.streaming.channel_connection import ChannelConnection, Limits
from cri.streaming.channel_protocol import StreamKind
from tests.unit.streaming.wsclient import Client, read_request

TEST_SECONDS = 30  # no test here may hang: past this the test fails with TimeoutError
DEFAULT_LIMITS = Limits()


@pytest.fixture(autouse=True)
def bounded_in_time() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"test still running after {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_SECONDS)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def no_thread_crashes() -> Iterator[list[threading.ExceptHookArgs]]:
    """Fails the test if any thread (the connection's reader above all) died of an exception."""
    crashes: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = crashes.append
    yield crashes
    threading.excepthook = previous
    assert not crashes, [f"{c.thread}: {c.exc_type.__name__}: {c.exc_value}" for c in crashes]


Connect = Callable[..., tuple[ChannelConnection, Client]]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Upgrades one end of a fresh socket pair; returns the server's connection and the client."""
    made: list[tuple[ChannelConnection | None, socket.socket, socket.socket]] = []

    def upgrade(
        subprotocols: Sequence[str] = ("v4.channel.k8s.io",), kind: StreamKind = StreamKind.REMOTECOMMAND,
        readable: Collection[int] = (0, 4), limits: Limits = DEFAULT_LIMITS, extra: bytes = b"",
        target: str = "/exec/token",
    ) -> tuple[ChannelConnection, Client]:
        server_sock, client_sock = socket.socketpair()
        made.append((None, server_sock, client_sock))
        client = Client(client_sock)
        client.request(subprotocols, target, extra)
        target, headers, received = read_request(server_sock)
        connection = websocket.accept(server_sock, target, headers, received, kind, readable, limits)
        made[-1] = (connection, server_sock, client_sock)
        answer, _ = client.response()
        assert isinstance(answer, AcceptConnection)
        return connection, client

    yield upgrade
    for connection, server_sock, client_sock in made:
        client_sock.close()
        if connection is not None:
            connection.abort()
            connection.close()
            assert connection.wait_closed(0)
        server_sock.close()
