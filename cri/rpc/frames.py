"""HTTP/2 frames (RFC 9113 §4 and §6) as a gRPC server meets them: a byte stream cut into frames,
the frames it sends built, and the few payloads it reads parsed. Pure: connection.py acts."""
from __future__ import annotations

import enum
from typing import NamedTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER = 9  # length (3 bytes), type, flags, stream id (4 bytes)
DEFAULT_FRAME_SIZE = 16384  # what a peer may send until its SETTINGS say more (ours never do)
MAX_FRAME_SIZE = (1 << 24) - 1
DEFAULT_WINDOW = 65535
MAX_WINDOW = (1 << 31) - 1
STREAM_ID_MASK = (1 << 31) - 1  # the top bit is reserved


class Kind(enum.IntEnum):
    DATA = 0
    HEADERS = 1
    PRIORITY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PUSH_PROMISE = 5
    PING = 6
    GOAWAY = 7
    WINDOW_UPDATE = 8
    CONTINUATION = 9


END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20


class Setting(enum.IntEnum):
    HEADER_TABLE_SIZE = 1
    ENABLE_PUSH = 2
    MAX_CONCURRENT_STREAMS = 3
    INITIAL_WINDOW_SIZE = 4
    MAX_FRAME_SIZE = 5
    MAX_HEADER_LIST_SIZE = 6


class ErrorCode(enum.IntEnum):
    NO_ERROR = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2
    FLOW_CONTROL_ERROR = 3
    STREAM_CLOSED = 5
    FRAME_SIZE_ERROR = 6
    REFUSED_STREAM = 7
    CANCEL = 8
    COMPRESSION_ERROR = 9
    ENHANCE_YOUR_CALM = 11


class ProtocolViolation(Exception):
    """The peer broke HTTP/2 in a way that costs the whole connection (a GOAWAY with ``code``)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Frame(NamedTuple):  # a tuple: one is made per frame read, and a tuple is the cheapest to make
    kind: int
    flags: int
    stream_id: int
    payload: bytes


class FrameReader:
    """Cuts what the client sends into frames: first its preface, then frames of at most
    ``DEFAULT_FRAME_SIZE`` bytes, the first of them SETTINGS."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._preface_seen = False
        self._settings_seen = False

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        if not self._preface_seen:
            if buffer[:len(PREFACE)] != PREFACE[:len(buffer)]:
                raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "the connection did not open with HTTP/2's preface")
            if len(buffer) < len(PREFACE):
                return []
            del buffer[:len(PREFACE)]
            self._preface_seen = True
        frames: list[Frame] = []
        start = 0
        while len(buffer) - start >= HEADER:
            length = int.from_bytes(buffer[start:start + 3], "big")
            if length > DEFAULT_FRAME_SIZE:
                raise ProtocolViolation(ErrorCode.FRAME_SIZE_ERROR,
                                        f"a frame of {length} bytes (at most {DEFAULT_FRAME_SIZE})")
            end = start + HEADER + length
            if len(buffer) < end:
                break
            kind, flags = buffer[start + 3], buffer[start + 4]
            stream_id = int.from_bytes(buffer[start + 5:start + 9], "big") & STREAM_ID_MASK
            if not self._settings_seen:
                if kind != Kind.SETTINGS:
                    raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "the preface was not followed by SETTINGS")
                self._settings_seen = True
            frames.append(Frame(kind, flags, stream_id, bytes(buffer[start + HEADER:end])))
            start = end
        del buffer[:start]
        return frames


def build(kind: Kind, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def data_head(stream_id: int, length: int) -> bytes:
    """A DATA frame's 9 bytes, its payload to follow (a reply's bytes are not copied into one)."""
    return length.to_bytes(3, "big") + bytes((Kind.DATA, 0)) + stream_id.to_bytes(4, "big")


def headers(stream_id: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """A header block as HEADERS and, past ``max_frame`` bytes, CONTINUATION frames."""
    first, rest = block[:max_frame], block[max_frame:]
    flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
    out = [build(Kind.HEADERS, flags, stream_id, first)]
    while rest:
        chunk, rest = rest[:max_frame], rest[max_frame:]
        out.append(build(Kind.CONTINUATION, 0 if rest else END_HEADERS, stream_id, chunk))
    return b"".join(out)


def settings(values: dict[Setting, int]) -> bytes:
    return build(Kind.SETTINGS, 0, 0, b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in values.items()))


def window_update(stream_id: int, increment: int) -> bytes:
    return build(Kind.WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def rst_stream(stream_id: int, code: ErrorCode) -> bytes:
    return build(Kind.RST_STREAM, 0, stream_id, code.to_bytes(4, "big"))


def goaway(last_stream_id: int, code: ErrorCode, reason: str = "") -> bytes:
    return build(Kind.GOAWAY, 0, 0, last_stream_id.to_bytes(4, "big") + code.to_bytes(4, "big") + reason.encode()[:256])


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    if len(payload) % 6:
        raise ProtocolViolation(ErrorCode.FRAME_SIZE_ERROR, f"a SETTINGS frame of {len(payload)} bytes")
    return [(int.from_bytes(payload[i:i + 2], "big"), int.from_bytes(payload[i + 2:i + 6], "big"))
            for i in range(0, len(payload), 6)]


def unpadded(frame: Frame) -> bytes:
    """A DATA or HEADERS frame's content: its padding, and a HEADERS frame's priority, left out."""
    payload, start = frame.payload, 0
    end = len(payload)
    if frame.flags & PADDED:
        if not payload or payload[0] >= len(payload):
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR,
                                    f"padding as long as the frame on stream {frame.stream_id}")
        start, end = 1, len(payload) - payload[0]
    if frame.kind == Kind.HEADERS and frame.flags & PRIORITY_FLAG:
        start += 5
        if start > end:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR if frame.flags & PADDED else ErrorCode.FRAME_SIZE_ERROR,
                                    f"a HEADERS frame too short for its priority on stream {frame.stream_id}")
    return payload[start:end] if start or end != len(payload) else payload


def number(payload: bytes, kind: Kind) -> int:
    """The 31-bit number a WINDOW_UPDATE or the 32-bit code a RST_STREAM carries."""
    if len(payload) != 4:
        raise ProtocolViolation(ErrorCode.FRAME_SIZE_ERROR, f"a {kind.name} frame of {len(payload)} bytes")
    value = int.from_bytes(payload, "big")
    return value & STREAM_ID_MASK if kind == Kind.WINDOW_UPDATE else value
