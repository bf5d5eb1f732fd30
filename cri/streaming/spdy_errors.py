"""What can go wrong on a SPDY connection: the draft's status codes and the exceptions callers see."""
from __future__ import annotations

import enum

from runtime import errors


class RstStatus(enum.IntEnum):
    """RST_STREAM status codes (SPDY/3.1 section 2.6.3)."""
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    """GOAWAY status codes (section 2.6.6)."""
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SpdyError(errors.Unavailable):
    """Base of the errors below: the connection, or one stream of it, can carry no more data (as
    channel_connection.ConnectionClosed for WebSocket)."""


class ProtocolError(SpdyError):
    """The peer broke the protocol in a way that ends the connection (a session error: the
    connection answers GOAWAY PROTOCOL_ERROR and closes)."""


class ConnectionClosed(SpdyError):
    """The connection is closed or closing: nothing more can be sent, and reads end once what
    already arrived has been read."""


class StreamClosed(SpdyError):
    """A write after our side of the stream was closed (we sent FIN, or the peer opened the stream
    unidirectional)."""


class StreamReset(SpdyError):
    """The stream was reset, by the peer (by_peer) or by us."""

    def __init__(self, stream_id: int, status: int, by_peer: bool) -> None:
        who = "the peer" if by_peer else "us"
        super().__init__(f"stream {stream_id} was reset by {who}: {_status_name(status)}")
        self.stream_id = stream_id
        self.status = status
        self.by_peer = by_peer


def _status_name(status: int) -> str:
    try:
        return RstStatus(status).name
    except ValueError:
        return f"status {status}"  # a status newer than the draft
