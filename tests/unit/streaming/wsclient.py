"""The test side of a WebSocket: a wsproto client on one end of a socket, and the reading of the
request head that the HTTP layer does before it hands the socket to websocket.accept()."""
from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol

TIMEOUT = 5.0


def read_request(sock: socket.socket) -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    """The request target, its headers, and the bytes received past the head."""
    http = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif event is h11.PAUSED:  # an upgrade request: h11 leaves the rest of the stream alone
            assert request is not None
            return request.target.decode(), list(request.headers), http.trailing_data[0]


def client_frame(data: bytes | str) -> bytes:
    """One masked data frame, as a client sends it, made without a handshake."""
    return bytes(FrameProtocol(client=True, extensions=[]).send_data(data))


class Client:
    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()

    def request(self, subprotocols: Sequence[str], target: str = "/exec/token", extra: bytes = b"") -> None:
        head = self.ws.send(Request(host="localhost", target=target, subprotocols=list(subprotocols)))
        self.sock.sendall(head + extra)

    def response(self) -> tuple[AcceptConnection | RejectConnection, bytes]:
        """The server's answer, and the body of a refusal."""
        answer = self.next_event()
        assert isinstance(answer, AcceptConnection | RejectConnection)
        body = b""
        finished = not (isinstance(answer, RejectConnection) and answer.has_body)
        while not finished:
            part = self.next_event()
            assert isinstance(part, RejectData)
            body, finished = body + part.data, part.body_finished
        return answer, body

    def next_event(self) -> Event:
        while not self._events:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self._events.extend(self.ws.events())
        return self._events.popleft()

    def receive(self) -> bytes | str | Ping | Pong | CloseConnection:
        """The next whole message, or the next control frame."""
        text, data = "", b""
        while True:
            event = self.next_event()
            if isinstance(event, TextMessage):
                text += event.data
            elif isinstance(event, BytesMessage):
                data += event.data
            else:
                assert isinstance(event, Ping | Pong | CloseConnection), event
                return event
            if event.message_finished:
                return text if isinstance(event, TextMessage) else data

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def message(self, data: bytes | str) -> None:
        self.send(BytesMessage(data=data) if isinstance(data, bytes) else TextMessage(data=data))
