"""Peers that grpcio would never be, over a raw unix socket (bytes by hand, or h2 as the client):
the server drops or refuses them without buffering what they claim to send, serves the honest
clients meanwhile, and keeps HTTP/2's rules (flow control, one response head) under stress."""
from __future__ import annotations

import logging
import os
import socket

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.rpc import wire
from cri.rpc.connection import Connection
from cri.rpc.server import Method
from tests.unit.cri.rpc.conftest import server_threads, wait_until

# A server thread that dies of an exception fails the test that made it die.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

ECHO = "/test.T/Echo"
GiB = 1 << 30


def echo(request: pb.VersionRequest, context) -> pb.VersionResponse:
    return pb.VersionResponse(version=request.version)


METHODS = {ECHO: Method(pb.VersionRequest, echo, streaming=False)}


def call_echo(channel: grpc.Channel, text: str) -> str:
    call = channel.unary_unary(ECHO, request_serializer=pb.VersionRequest.SerializeToString,
                               response_deserializer=pb.VersionResponse.FromString)
    return call(pb.VersionRequest(version=text), timeout=5).version



def connect(path: str, sockets: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sockets.append(sock)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_garbage_instead_of_the_preface_is_dropped(serve, raw) -> None:
    served = serve(METHODS)
    sock = connect(served.path, raw)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: pycrid\r\n\r\n")
    read_to_end(sock)  # the server's SETTINGS and GOAWAY, then its close
    assert call_echo(served.channel(), "still serving") == "still serving"


def test_a_silent_peer_does_not_block_other_clients(serve, raw) -> None:
    served = serve(METHODS, workers=1)
    for _ in range(3):
        connect(served.path, raw)  # connects, sends nothing
    half = connect(served.path, raw)
    half.sendall(b"PRI * HTTP/2.0\r\n")  # a preface cut short
    assert call_echo(served.channel(), "hello") == "hello"


class H2Client:
    """Just enough of an HTTP/2 client to send what grpcio would not."""

    def __init__(self, sock: socket.socket, stream_window: int | None = None) -> None:
        self.sock = sock
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        if stream_window is not None:
            self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: (1 << 24) - 1})  # a frame may take a whole window
            self.h2.max_inbound_frame_size = (1 << 24) - 1  # from the start, not from the server's ACK
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        if data := self.h2.data_to_send():
            self.sock.sendall(data)

    def request(self, path: str = ECHO, **extra: bytes) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                   (b":authority", b"localhost"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]
        headers += [(k.replace("_", "-").encode(), v) for k, v in extra.items()]
        self.h2.send_headers(stream_id, headers)
        return stream_id

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.h2.send_data(stream_id, data, end_stream=end_stream)
        self.flush()

    def replies(self, streams: set[int]) -> dict[int, tuple[int, bytes]]:
        """Each stream's count of reply bytes and grpc-status, reading (and acknowledging) all."""
        received = dict.fromkeys(streams, 0)
        statuses: dict[int, bytes] = {}
        while len(statuses) < len(streams):
            data = self.sock.recv(65536)
            assert data, "the server closed the connection before the calls' statuses"
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    received[event.stream_id] += len(event.data or b"")
                    self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
                elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    if (code := dict(event.headers or []).get(b"grpc-status")) is not None:
                        statuses[event.stream_id] = code
            self.flush()
        return {stream_id: (received[stream_id], statuses[stream_id]) for stream_id in streams}

    def status(self, stream_id: int) -> dict[bytes, bytes]:
        """The stream's closing headers (Trailers-Only or trailers), as the server sends them."""
        while True:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection before the call's status"
            for event in self.h2.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)) \
                        and event.stream_id == stream_id and b"grpc-status" in dict(event.headers or []):
                    self.flush()
                    return dict(event.headers or [])
                if isinstance(event, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            self.flush()


def test_replies_waiting_on_a_small_connection_window_share_it(serve, raw, busy_switching) -> None:
    # Eight replies, each free to send by its stream's window, take turns on the connection's:
    # 64 KiB, opened again by half as the client reads.
    def big(request: pb.VersionRequest, context) -> pb.VersionResponse:
        return pb.VersionResponse(version="z" * int(request.version))

    served = serve({"/test.T/Big": Method(pb.VersionRequest, big, False)}, workers=8)
    client = H2Client(connect(served.path, raw), stream_window=16 << 20)
    body = wire.frame(pb.VersionRequest(version=str(1 << 20)).SerializeToString())
    streams = set()
    for _ in range(8):
        streams.add(stream_id := client.request("/test.T/Big"))
        client.h2.send_data(stream_id, body, end_stream=True)
    client.flush()
    reply_size = len(wire.frame(pb.VersionResponse(version="z" * (1 << 20)).SerializeToString()))
    assert client.replies(streams) == dict.fromkeys(streams, (reply_size, b"0"))


def test_a_reply_that_fails_after_its_headers_ends_with_trailers(serve, raw, monkeypatch) -> None:
    def failing_send(self, stream_id: int, payload: bytes, flush: bool) -> None:
        raise RuntimeError("the reply could not be sent")

    monkeypatch.setattr(Connection, "send_message", failing_send)
    served = serve(METHODS)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request()
    client.send(stream_id, b"\0\0\0\0\0", end_stream=True)
    # h2 (the client) refuses a second response head: trailers may not carry :status
    assert client.status(stream_id)[b"grpc-status"] == b"2"


def test_a_declared_gibibyte_is_refused_from_its_prefix(serve, raw) -> None:
    served = serve(METHODS, max_receive=1 << 20)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request()
    client.send(stream_id, b"\0" + GiB.to_bytes(4, "big") + b"x" * 1000)  # and the rest never comes
    assert client.status(stream_id)[b"grpc-status"] == b"8"
    # the connection still serves
    stream_id = client.request()
    client.send(stream_id, b"\0\0\0\0\4\x0a\x02hi", end_stream=True)
    reply = client.status(stream_id)
    assert reply[b"grpc-status"] == b"0"


def test_a_declared_gibibyte_in_a_request_that_ends_at_once_is_refused(serve, raw) -> None:
    served = serve(METHODS, max_receive=1 << 20)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request()
    client.send(stream_id, b"\0" + GiB.to_bytes(4, "big") + b"x" * 1000, end_stream=True)
    assert client.status(stream_id)[b"grpc-status"] == b"8"


def test_a_declared_gibibyte_whose_request_ends_in_the_same_read_is_refused(serve, raw) -> None:
    # The refusal comes on the first DATA frame, while h2 has already taken the last one (and its
    # END_STREAM) from the same read.
    served = serve(METHODS, max_receive=1 << 20)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request()
    client.h2.send_data(stream_id, b"\0" + GiB.to_bytes(4, "big") + b"x" * 1000)
    client.send(stream_id, b"y" * 1000, end_stream=True)  # both frames in one write
    assert client.status(stream_id)[b"grpc-status"] == b"8"
    stream_id = client.request()
    client.send(stream_id, b"\0\0\0\0\0", end_stream=True)
    assert client.status(stream_id)[b"grpc-status"] == b"0"


@pytest.mark.parametrize(("extra", "body", "code"), [
    ({"grpc_encoding": b"gzip"}, b"\0\0\0\0\0", b"12"),
    ({"grpc_timeout": b"forever"}, b"\0\0\0\0\0", b"13"),
    ({}, b"\0\0\0\0\5ab", b"13"),  # ends inside its message
    ({}, b"\0\0\0\0\0\0\0\0\0\0", b"12"),  # two messages
], ids=["gzip", "bad-timeout", "truncated", "two-messages"])
def test_malformed_requests_get_their_status_and_the_connection_serves_on(serve, raw, extra, body, code) -> None:
    served = serve(METHODS)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request(**extra)
    client.send(stream_id, body, end_stream=True)
    assert client.status(stream_id)[b"grpc-status"] == code
    stream_id = client.request()
    client.send(stream_id, b"\0\0\0\0\0", end_stream=True)
    assert client.status(stream_id)[b"grpc-status"] == b"0"


def test_stop_is_prompt_with_a_peer_that_does_not_read(serve, raw) -> None:
    served = serve(METHODS)
    client = H2Client(connect(served.path, raw))
    client.sock.settimeout(0.2)
    ping = b"\0\0\x08\x06\0\0\0\0\0" + b"12345678"  # PING; each is answered with an ACK never read
    try:
        for _ in range(200_000):
            client.sock.sendall(ping * 64)
    except TimeoutError:
        pass  # the server stopped reading: its answers fill the socket
    else:
        pytest.fail("the server kept reading though its answers could not be sent")
    assert served.stop(None).wait(5), "stop(None) waits on a client that does not read"
    assert call_echo_refused(served)


def call_echo_refused(served) -> bool:
    with pytest.raises(grpc.RpcError) as err:
        call_echo(served.channel(), "x")
    return err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_stop_closes_every_socket(serve, raw, socket_dir) -> None:
    # No grpcio channel here: its core keeps descriptors of its own.
    before = set(os.listdir("/proc/self/fd"))
    served = serve(METHODS)
    client = H2Client(connect(served.path, raw))
    stream_id = client.request()
    client.send(stream_id, b"\0\0\0\0\0", end_stream=True)
    assert client.status(stream_id)[b"grpc-status"] == b"0"
    connect(served.path, raw).sendall(b"garbage that is no preface")
    connect(served.path, raw)
    assert served.stop(None).wait(5)
    assert wait_until(lambda: not server_threads())
    for sock in raw:
        sock.close()
    # Only what appeared: descriptors of earlier tests' objects may be closed meanwhile by the collector.
    assert set(os.listdir("/proc/self/fd")) - before == set()


def test_goodbye_before_the_connections_thread_ran_closes_quietly(caplog) -> None:
    # stop() may say goodbye to a connection just accepted, whose reading thread has not begun.
    ours, peer = socket.socketpair()
    closed: list[Connection] = []
    connection = Connection(ours, lambda *args: None, 1024, closed.append)
    try:
        connection.goodbye()
        connection.run()
        peer.settimeout(5)
        read_to_end(peer)
    finally:
        peer.close()
        ours.close()
    assert closed == [connection]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
