"""The WebSocket upgrade of a request the HTTP layer has already read, into a ChannelConnection.

upgrade() decides, touching no socket: the 101 response to send, or HandshakeRefused carrying the
error response to send instead; accept() sends it.
"""
from __future__ import annotations

import http
import logging
import socket
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.utilities import ProtocolError, RemoteProtocolError

from cri.streaming.channel_connection import DEFAULT_LIMITS, ChannelConnection, Limits
from cri.streaming.channel_protocol import ChannelProtocol, StreamKind, UnsupportedProtocol, negotiate
from cri.streaming.httphead import endpoint
from cri.streaming.socket_transport import send_all
from runtime import errors

log = logging.getLogger("pycrid.streaming")


class HandshakeRefused(errors.InvalidArgument):
    """The request cannot be upgraded; ``response`` is the HTTP error response to send back."""

    def __init__(self, message: str, response: bytes) -> None:
        super().__init__(message)
        self.response = response


def accept(
    sock: socket.socket, target: str, headers: Sequence[tuple[bytes, bytes]], received: bytes,
    kind: StreamKind, readable: Collection[int], limits: Limits = DEFAULT_LIMITS,
) -> ChannelConnection:
    """Answers the upgrade request the HTTP layer has read (``target``, ``headers``; ``received`` is
    what it read past the request head) and returns the open connection, which owns ``sock`` from
    then on. ``readable`` are the channels the client may send on; data on others is dropped.

    On HandshakeRefused the error response has been sent; on it or on OSError (the response could
    not be sent within Limits.write_timeout) the caller closes the socket.
    """
    sock.setblocking(True)  # the connection polls itself; a socket timeout would fight that
    try:
        ws, protocol, response = upgrade(target, headers, kind)
    except HandshakeRefused as e:
        send_all(sock, e.response, limits.write_timeout)
        raise
    log.info("streaming %s: WebSocket, subprotocol %s", endpoint(urlsplit(target).path),
             protocol.name or "none offered")
    send_all(sock, response, limits.write_timeout)
    return ChannelConnection(sock, ws, protocol, readable, limits, received)


def upgrade(
    target: str, headers: Sequence[tuple[bytes, bytes]], kind: StreamKind,
) -> tuple[WSConnection, ChannelProtocol, bytes]:
    """An open server-side connection, its subprotocol, and the 101 response that opens it.

    ``target`` and ``headers`` are the request's, as the HTTP layer parsed them (a GET). No
    extension (permessage-deflate) is ever accepted, so what a client sends is never inflated.
    """
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection(list(headers), target)
        request = next(e for e in ws.events() if isinstance(e, Request))
    except RemoteProtocolError as e:
        hint = e.event_hint if isinstance(e.event_hint, RejectConnection) else RejectConnection()
        raise _refused(f"not a WebSocket upgrade: {e}", hint.status_code, hint.headers) from e
    except (ProtocolError, h11.ProtocolError, UnicodeError) as e:
        raise _refused(f"malformed upgrade request: {e}", 400, []) from e
    try:
        protocol = negotiate(request.subprotocols, kind)
    except UnsupportedProtocol as e:
        raise _refused(str(e), 400, []) from e
    response = ws.send(AcceptConnection(subprotocol=protocol.name or None))
    assert ws.state is ConnectionState.OPEN
    return ws, protocol, response


def _refused(message: str, status: int, headers: Sequence[tuple[bytes, bytes]]) -> HandshakeRefused:
    body = (message + "\n").encode()
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode()]
    head += [name + b": " + value for name, value in headers]
    head += [b"Content-Type: text/plain; charset=utf-8", b"Content-Length: %d" % len(body), b"Connection: close"]
    return HandshakeRefused(message, b"\r\n".join(head) + b"\r\n\r\n" + body)
