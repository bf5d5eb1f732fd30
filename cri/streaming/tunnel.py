"""SPDY tunnelled over WebSocket: what client-go's port-forward dialer for WebSockets speaks (crictl
port-forward -r websocket; kubectl to the API server). The client offers the subprotocol
"SPDY/3.1+portforward.k8s.io" and then sends the bytes of a SPDY session in binary messages.

The tunnel unwraps them onto one end of a socketpair and the ordinary SPDY connection runs on the
other, so there is one SPDY implementation to trust; the pump threads copy one message at a time,
and the kernel's socket buffers are the only queue (back-pressure both ways).
"""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Sequence

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request, TextMessage
from wsproto.utilities import ProtocolError

from cri.streaming.httphead import RequestHead
from cri.streaming.socket_transport import send_all
from runtime.errors import InvalidArgument

PREFIX = "SPDY/3.1+"
WRITE_TIMEOUT = 60.0
log = logging.getLogger("pycrid.streaming")


def is_tunnel(head: RequestHead) -> bool:
    return any(p.startswith(PREFIX) for p in head.tokens("Sec-WebSocket-Protocol"))


def open_tunnel(sock: socket.socket, head: RequestHead, received: bytes, served: Sequence[str]) -> socket.socket:
    """Accepts the WebSocket upgrade for the first tunnelled protocol offered that we serve, and
    returns the socket the SPDY session runs on (the tunnel's inner end)."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection(list(head.raw_headers), head.target)
        request = next(e for e in ws.events() if isinstance(e, Request))
    except (ProtocolError, StopIteration) as e:
        send_all(sock, ws.send(RejectConnection(status_code=400)), WRITE_TIMEOUT)
        raise InvalidArgument(f"not a WebSocket upgrade: {e}") from e
    chosen = next((p for p in request.subprotocols if p.removeprefix(PREFIX) in served and p.startswith(PREFIX)),
                  None)
    if chosen is None:
        send_all(sock, ws.send(RejectConnection(status_code=400)), WRITE_TIMEOUT)
        raise InvalidArgument(f"none of {request.subprotocols} is served; served are "
                              f"{[PREFIX + p for p in served]}")
    log.info("streaming %s: WebSocket, subprotocol %s (SPDY/3.1 tunnelled)", head.endpoint, chosen)
    send_all(sock, ws.send(AcceptConnection(subprotocol=chosen)), WRITE_TIMEOUT)
    inner, outer = socket.socketpair()
    tunnel = Tunnel(ws, sock, outer)
    if received:
        ws.receive_data(received)
    threading.Thread(target=tunnel.unwrap, name="tunnel in", daemon=True).start()
    threading.Thread(target=tunnel.wrap, name="tunnel out", daemon=True).start()
    return inner


class Tunnel:
    def __init__(self, ws: WSConnection, sock: socket.socket, outer: socket.socket) -> None:
        self._ws, self._sock, self._outer = ws, sock, outer
        self._lock = threading.Lock()  # wsproto's state is one object for both directions

    def _send(self, event: BytesMessage | CloseConnection | Ping) -> None:
        with self._lock:
            data = self._ws.send(event)
        send_all(self._sock, data, WRITE_TIMEOUT)

    def unwrap(self) -> None:
        """Client → SPDY: the payload of every binary message, in order."""
        try:
            while True:
                with self._lock:
                    events = list(self._ws.events())
                for event in events:
                    if isinstance(event, BytesMessage):
                        self._outer.sendall(event.data)
                    elif isinstance(event, Ping):
                        with self._lock:
                            pong = self._ws.send(event.response())
                        send_all(self._sock, pong, WRITE_TIMEOUT)
                    elif isinstance(event, CloseConnection | TextMessage):
                        return  # the client is done (text is not part of the protocol)
                data = self._sock.recv(65536)
                with self._lock:
                    self._ws.receive_data(data or None)
                if not data:
                    return
        except (OSError, ProtocolError) as e:
            log.debug("tunnel: reading the client ended: %s", e)
        finally:
            with contextlib.suppress(OSError):
                self._outer.shutdown(socket.SHUT_WR)

    def wrap(self) -> None:
        """SPDY → client: what the session writes, one binary message per read."""
        try:
            while data := self._outer.recv(65536):
                self._send(BytesMessage(data=data))
            self._send(CloseConnection(code=1000))
        except (OSError, ProtocolError) as e:
            log.debug("tunnel: writing to the client ended: %s", e)
        finally:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._outer.close()
