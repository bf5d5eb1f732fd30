"""gRPC status codes and how a status travels: the grpc-status and grpc-message trailers."""
from __future__ import annotations

import enum


class StatusCode(enum.IntEnum):
    """The codes of the gRPC spec (doc/statuscodes.md); names as grpc's own libraries spell them."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RpcAbort(Exception):
    """Ends the call with ``code`` and ``message`` (raised by a call context's abort())."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


# Bytes a grpc-message may carry as they are: printable ASCII but '%' (the spec's percent-encoding).
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


def encode_message(message: str) -> bytes:
    """The grpc-message value: the UTF-8 text, every byte outside printable ASCII and every '%'
    as %XX, so any text survives an HTTP/2 header."""
    return b"".join(bytes((b,)) if b in _PLAIN else b"%%%02X" % b for b in message.encode())


def trailers(code: StatusCode, message: str = "") -> list[tuple[bytes, bytes]]:
    """A call's closing trailers."""
    fields = [(b"grpc-status", str(int(code)).encode())]
    if message:
        fields.append((b"grpc-message", encode_message(message)))
    return fields
