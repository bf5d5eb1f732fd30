"""SPDY/3.1 frames: their in-memory form, and conversion to and from the wire (draft section 2.2,
2.6). Pure apart from the two header compression contexts passed in."""
from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from cri.streaming.spdy_errors import ProtocolError
from cri.streaming.spdy_headers import HeaderDeflater, HeaderInflater

VERSION = 3  # SPDY/3.1 is version 3 on the wire
FRAME_HEADER_SIZE = 8
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02  # SYN_STREAM only
MAX_STREAM_ID = 0x7FFFFFFF
MAX_WINDOW = 0x7FFFFFFF
MAX_LENGTH = 0xFFFFFF


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class SettingId(enum.IntEnum):
    MAX_CONCURRENT_STREAMS = 4
    INITIAL_WINDOW_SIZE = 7


@dataclass(frozen=True)
class Limits:
    """What a peer can make us hold. The defaults are far above what the kubelet and kubectl send
    (a handful of short headers) and small enough per connection. DATA frames need no limit: the
    connection takes their payload off the socket in pieces, as there is room for it."""
    max_control_payload: int = 64 * 1024  # the draft requires at least 8192
    max_header_block: int = 64 * 1024  # decompressed
    max_headers: int = 128
    max_streams: int = 1000  # open at once; more are refused
    max_buffered: int = 1024 * 1024  # received, not yet read, over all streams


@dataclass(frozen=True)
class FrameHeader:
    """The 8 bytes every frame starts with."""
    control: bool
    type: int  # control frames
    stream_id: int  # data frames
    flags: int
    length: int


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Mapping[str, str]
    flags: int = 0
    associated_id: int = 0
    priority: int = 0  # 0 (highest) to 7
    slot: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Mapping[str, str]
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Setting:
    id: int
    value: int
    flags: int = 0


@dataclass(frozen=True)
class Settings:
    entries: tuple[Setting, ...] = field(default_factory=tuple)
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int


@dataclass(frozen=True)
class Headers:
    stream_id: int
    headers: Mapping[str, str]
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int  # 0: the connection's window
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    flags: int = 0


Frame = SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate | Data

_HEADER = struct.Struct(">II")
_CONTROL = struct.Struct(">HHI")
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


def parse_frame_header(raw: bytes, limits: Limits) -> FrameHeader:
    """Reads the common header and refuses a control frame over the limit before anything is
    allocated."""
    first, flags_length = _HEADER.unpack(raw)
    control = bool(first & 0x80000000)
    header = FrameHeader(control=control, type=first & 0xFFFF if control else 0,
                         stream_id=0 if control else first & MAX_STREAM_ID,
                         flags=flags_length >> 24, length=flags_length & MAX_LENGTH)
    if control and (first >> 16) & 0x7FFF != VERSION:
        raise ProtocolError(f"SPDY version {(first >> 16) & 0x7FFF} is not {VERSION}")
    if control and header.length > limits.max_control_payload:
        raise ProtocolError(f"control frame of {header.length} bytes is over the limit of {limits.max_control_payload}")
    return header


def decode_frame(header: FrameHeader, payload: bytes, inflater: HeaderInflater) -> Frame | None:
    """The frame, or None for a control type this draft does not define (ignored, not an error)."""
    if not header.control:
        if header.stream_id == 0:
            raise ProtocolError("DATA frame on stream 0")
        return Data(header.stream_id, payload, header.flags)
    view = memoryview(payload)
    match header.type:
        case FrameType.SYN_STREAM:
            _need(view, 10, exact=False)
            stream_id, associated = _ids(view, 0), _ids(view, 4)
            return SynStream(_nonzero(stream_id), inflater.decompress(payload[10:]), header.flags, associated,
                             view[8] >> 5, view[9])
        case FrameType.SYN_REPLY | FrameType.HEADERS:
            _need(view, 4, exact=False)
            stream_id = _nonzero(_ids(view, 0))
            headers = inflater.decompress(payload[4:])
            if header.type == FrameType.SYN_REPLY:
                return SynReply(stream_id, headers, header.flags)
            return Headers(stream_id, headers, header.flags)
        case FrameType.RST_STREAM:
            _need(view, 8)
            status = _U32.unpack_from(view, 4)[0]
            if status == 0:
                raise ProtocolError("RST_STREAM with status 0")
            return RstStream(_nonzero(_ids(view, 0)), status)
        case FrameType.SETTINGS:
            return _decode_settings(view, header.flags)
        case FrameType.PING:
            _need(view, 4)
            return Ping(_U32.unpack_from(view, 0)[0])
        case FrameType.GOAWAY:
            _need(view, 8)
            return GoAway(_ids(view, 0), _U32.unpack_from(view, 4)[0])
        case FrameType.WINDOW_UPDATE:
            _need(view, 8)
            delta = _ids(view, 4)
            if delta == 0:
                raise ProtocolError("WINDOW_UPDATE of 0 bytes")
            return WindowUpdate(_ids(view, 0), delta)
    return None


def encode_frame(frame: Frame, deflater: HeaderDeflater) -> bytes:
    """The frame's bytes. Frames with headers advance the deflater: encode them in wire order."""
    match frame:
        case Data(stream_id, data, flags):
            _check_id(stream_id)
            return _HEADER.pack(stream_id, flags << 24 | _length(len(data))) + data
        case SynStream():
            _check_id(frame.stream_id)
            fixed = _TWO_U32.pack(frame.stream_id, frame.associated_id) + bytes([frame.priority << 5, frame.slot])
            return _control(FrameType.SYN_STREAM, frame.flags, fixed + deflater.compress(frame.headers))
        case SynReply(stream_id, headers, flags):
            _check_id(stream_id)
            return _control(FrameType.SYN_REPLY, flags, _U32.pack(stream_id) + deflater.compress(headers))
        case Headers(stream_id, headers, flags):
            _check_id(stream_id)
            return _control(FrameType.HEADERS, flags, _U32.pack(stream_id) + deflater.compress(headers))
        case RstStream(stream_id, status):
            _check_id(stream_id)
            return _control(FrameType.RST_STREAM, 0, _TWO_U32.pack(stream_id, status))
        case Settings(entries, flags):
            body = b"".join(_TWO_U32.pack(e.flags << 24 | e.id, e.value) for e in entries)
            return _control(FrameType.SETTINGS, flags, _U32.pack(len(entries)) + body)
        case Ping(ping_id):
            return _control(FrameType.PING, 0, _U32.pack(ping_id))
        case GoAway(last_good, status):
            return _control(FrameType.GOAWAY, 0, _TWO_U32.pack(last_good, status))
        case WindowUpdate(stream_id, delta):
            return _control(FrameType.WINDOW_UPDATE, 0, _TWO_U32.pack(stream_id, delta))
    raise TypeError(f"not a SPDY frame: {frame!r}")


def _decode_settings(view: memoryview, flags: int) -> Settings:
    _need(view, 4, exact=False)
    count = _U32.unpack_from(view, 0)[0]
    if len(view) != 4 + 8 * count:  # also bounds count by the frame's length
        raise ProtocolError(f"SETTINGS of {len(view)} bytes cannot hold {count} entries")
    entries = []
    for offset in range(4, len(view), 8):
        flags_id, value = _TWO_U32.unpack_from(view, offset)
        entries.append(Setting(flags_id & 0xFFFFFF, value, flags_id >> 24))
    return Settings(tuple(entries), flags)


def _control(frame_type: FrameType, flags: int, payload: bytes) -> bytes:
    return _CONTROL.pack(0x8000 | VERSION, frame_type, flags << 24 | _length(len(payload))) + payload


def _need(view: memoryview, size: int, exact: bool = True) -> None:
    if len(view) < size or (exact and len(view) != size):
        raise ProtocolError(f"control frame payload of {len(view)} bytes where {size} are needed")


def _ids(view: memoryview, offset: int) -> int:
    return int(_U32.unpack_from(view, offset)[0]) & MAX_STREAM_ID  # the top bit is reserved


def _nonzero(stream_id: int) -> int:
    if stream_id == 0:
        raise ProtocolError("stream id 0 in a stream frame")
    return stream_id


def _check_id(stream_id: int) -> None:
    if not 0 < stream_id <= MAX_STREAM_ID:
        raise ValueError(f"stream id {stream_id} is out of range")


def _length(length: int) -> int:
    if length > MAX_LENGTH:
        raise ValueError(f"a frame payload of {length} bytes does not fit in 24 bits")
    return length
