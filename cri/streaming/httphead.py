"""The head of an HTTP/1.1 request on the streaming port, read with bounds (size and time) so that
a client that sends nothing, or endless headers, costs a thread for a few seconds and no memory."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_HEAD = 16 * 1024
HEAD_SECONDS = 10.0


class BadRequest(Exception):
    """The client sent something that is not an HTTP request we serve; answered 400."""


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str  # as sent: path and query
    path: str
    query: str
    headers: dict[str, list[str]] = field(default_factory=dict)  # lower-cased names
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()  # as sent, in order

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        return values[0] if values else ""

    @property
    def endpoint(self) -> str:
        """What the URL serves (exec, attach, portforward), for logs: its path without the token."""
        return endpoint(self.path)

    def tokens(self, name: str) -> list[str]:
        """A comma-separated header's values, over all its lines (Upgrade, Connection,
        Sec-WebSocket-Protocol, X-Stream-Protocol-Version)."""
        return [t.strip() for v in self.headers.get(name.lower(), []) for t in v.split(",") if t.strip()]


def endpoint(path: str) -> str:
    return path.strip("/").partition("/")[0]


def read_head(conn: socket.socket) -> tuple[RequestHead, bytes]:
    """The request head and whatever the client sent after it (the start of a WebSocket or SPDY
    stream may come in the same segment)."""
    buffer = b""
    deadline = time.monotonic() + HEAD_SECONDS
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD:
            raise BadRequest(f"request head larger than {MAX_HEAD} bytes")
        left = deadline - time.monotonic()
        if left <= 0:
            raise BadRequest("request head not received in time")
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except TimeoutError as e:
            raise BadRequest("request head not received in time") from e
        if not chunk:
            raise BadRequest("connection closed before a request head")
        buffer += chunk
    conn.settimeout(None)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return parse_head(head), rest


def parse_head(head: bytes) -> RequestHead:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError as e:
        raise BadRequest(f"malformed request line {head[:80]!r}") from e
    if not version.startswith("HTTP/1."):
        raise BadRequest(f"unsupported protocol {version!r}")
    headers: dict[str, list[str]] = {}
    raw: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"malformed header line {line[:80]!r}")
        headers.setdefault(name.lower(), []).append(value.strip())
        raw.append((name.encode("latin-1"), value.strip().encode("latin-1")))
    url = urlsplit(target)
    return RequestHead(method, target, url.path, url.query, headers, tuple(raw))


def respond(conn: socket.socket, status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body or not status.startswith("101"):
        lines += [f"Content-Length: {len(body)}", "Content-Type: text/plain; charset=utf-8"]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
