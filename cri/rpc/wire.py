"""gRPC over HTTP/2 (doc/PROTOCOL-HTTP2.md), the pure part: a request's headers read, a message
framed and unframed. Decisions only; connection.py acts on them."""
from __future__ import annotations

from dataclasses import dataclass

from cri.rpc.status import StatusCode

_UNIT_SECONDS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
PREFIX = 5  # compressed flag (1 byte) and length (4 bytes, big-endian) before each message


class WireError(Exception):
    """The request breaks the protocol: answered with ``code`` and this message."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RequestHead:
    path: str
    timeout: float | None  # seconds, from grpc-timeout


def read_head(headers: list[tuple[bytes, bytes]]) -> RequestHead:
    fields = dict(headers)
    if fields.get(b":method") != b"POST":
        raise WireError(StatusCode.UNIMPLEMENTED, f"method {fields.get(b':method', b'')!r} is not POST")
    content_type = fields.get(b"content-type", b"")
    if not content_type.startswith(b"application/grpc"):
        raise WireError(StatusCode.UNIMPLEMENTED, f"content-type {content_type!r} is not application/grpc")
    encoding = fields.get(b"grpc-encoding", b"identity")
    if encoding != b"identity":
        raise WireError(StatusCode.UNIMPLEMENTED, f"grpc-encoding {encoding!r} is not supported (identity only)")
    timeout = fields.get(b"grpc-timeout")
    return RequestHead(fields.get(b":path", b"").decode(errors="replace"),
                       None if timeout is None else parse_timeout(timeout))


def parse_timeout(value: bytes) -> float:
    """grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n)."""
    digits, unit = value[:-1], value[-1:]
    if not (1 <= len(digits) <= 8 and digits.isdigit() and unit in _UNIT_SECONDS):
        raise WireError(StatusCode.INTERNAL, f"malformed grpc-timeout {value[:20]!r}")
    return int(digits) * _UNIT_SECONDS[unit]


def frame(payload: bytes) -> bytes:
    return b"\0" + len(payload).to_bytes(4, "big") + payload


def declared_length(buffer: bytes | bytearray, limit: int) -> int | None:
    """The length the first message's prefix declares, once the prefix is in; refused past
    ``limit`` at once, so a huge declared message is never buffered."""
    if len(buffer) < PREFIX:
        return None
    if buffer[0] != 0:
        raise WireError(StatusCode.UNIMPLEMENTED, "compressed messages are not supported (no grpc-encoding)")
    length = int.from_bytes(buffer[1:PREFIX], "big")
    if length > limit:
        raise WireError(StatusCode.RESOURCE_EXHAUSTED,
                        f"received message larger than max ({length} vs. {limit})")
    return length


def single_message(buffer: bytes | bytearray, limit: int) -> bytes:
    """The request's one message (every CRI call sends exactly one)."""
    length = declared_length(buffer, limit)
    if length is None or len(buffer) < PREFIX + length:
        raise WireError(StatusCode.INTERNAL, "the request ended inside a message")
    if len(buffer) > PREFIX + length:
        raise WireError(StatusCode.UNIMPLEMENTED, "more than one request message (client streaming is not served)")
    return bytes(buffer[PREFIX:])
