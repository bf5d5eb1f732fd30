from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest
from wsproto.events import AcceptConnection, RejectConnection, Request

from cri.streaming import websocket
from cri.streaming.channel_protocol import StreamKind
from cri.streaming.websocket import HandshakeRefused
from tests.unit.streaming.conftest import Connect
from tests.unit.streaming.wsclient import Client, client_frame, read_request

RC, PF = StreamKind.REMOTECOMMAND, StreamKind.PORTFORWARD


@pytest.mark.parametrize("name", [
    "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "v3.channel.k8s.io",
    "v2.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io",
])
def test_each_remotecommand_subprotocol_is_answered(connect: Connect, name: str) -> None:
    connection, client = connect([name])
    assert connection.protocol.name == name
    assert client.ws.state.name == "OPEN"


def test_the_answer_names_the_subprotocol_in_the_clients_order() -> None:
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock:
        client = Client(client_sock)
        client.request(["bogus", "v3.channel.k8s.io", "v5.channel.k8s.io"])
        connection = websocket.accept(server_sock, *read_request(server_sock), RC, {0})
        answer, _ = client.response()
        assert isinstance(answer, AcceptConnection) and answer.subprotocol == "v3.channel.k8s.io"
        connection.abort()
        connection.close()


def test_no_subprotocol_offered_gets_none_named(connect: Connect) -> None:
    connection, client = connect([])
    assert connection.protocol.name == "" and not connection.protocol.base64


@pytest.mark.parametrize("name", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_portforward_subprotocols_are_answered(connect: Connect, name: str) -> None:
    connection, _ = connect([name], kind=PF, readable={0})
    assert connection.protocol.name == name


def refused(subprotocols: Sequence[str], kind: StreamKind, raw: bytes | None = None) -> tuple[
        HandshakeRefused, RejectConnection, bytes]:
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock:
        client = Client(client_sock)
        if raw is None:
            client.request(subprotocols)
        else:  # a request wsproto would not make: sent raw, the client's state machine only primed
            client.ws.send(Request(host="localhost", target="/"))
            client_sock.sendall(raw)
        target, headers, received = read_request(server_sock)
        with pytest.raises(HandshakeRefused) as caught:
            websocket.accept(server_sock, target, headers, received, kind, {0})
        answer, body = client.response()
        assert isinstance(answer, RejectConnection)
        return caught.value, answer, body


def test_an_unspoken_subprotocol_is_refused_with_a_clear_message() -> None:
    error, answer, body = refused(["v5.channel.k8s.io"], PF)
    assert answer.status_code == 400
    assert body.decode() == str(error) + "\n"
    assert "requested protocol(s) are not supported: ['v5.channel.k8s.io']" in body.decode()
    assert "v4.channel.k8s.io" in body.decode()


def test_a_request_without_a_key_is_refused() -> None:
    raw = b"GET /exec/t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
          b"Sec-WebSocket-Version: 13\r\n\r\n"
    error, answer, body = refused([], RC, raw)
    assert answer.status_code == 400 and b"Sec-WebSocket-Key" in body and "not a WebSocket upgrade" in str(error)


def test_a_request_of_another_websocket_version_is_told_the_version() -> None:
    raw = b"GET /exec/t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    _, answer, _ = refused([], RC, raw)
    assert answer.status_code == 426
    assert (b"sec-websocket-version", b"13") in answer.headers


def test_a_request_without_host_is_refused() -> None:
    raw = b"GET /exec/t HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    error, answer, _ = refused([], RC, raw)
    assert answer.status_code == 400 and "Host" in str(error)


def test_bytes_read_past_the_request_head_are_not_lost(connect: Connect) -> None:
    connection, _ = connect(["v4.channel.k8s.io"], extra=client_frame(b"\x00early"))
    assert connection.read(0, timeout=5) == b"early"


def test_the_handshake_works_over_loopback_tcp() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname(), timeout=5)
        server_sock, _ = listener.accept()
        with client_sock, server_sock:
            client = Client(client_sock)
            client.request(["v4.channel.k8s.io"])
            connection = websocket.accept(server_sock, *read_request(server_sock), RC, {0})
            answer, _ = client.response()
            assert isinstance(answer, AcceptConnection)
            client.message(b"\x00over tcp")
            assert connection.read(0, timeout=5) == b"over tcp"
            connection.write(1, b"back")
            assert client.receive() == b"\x01back"
            connection.abort()
            connection.close()
