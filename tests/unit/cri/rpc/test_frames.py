"""cri.rpc.frames, pure: the reader cuts bytes into frames whatever the reads' sizes, and what the
builders make is read back by hyperframe (h2's own frame layer, an independent parser)."""
from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hyperframe.frame import Frame as HFrame

from cri.rpc import frames
from cri.rpc.frames import ErrorCode, Frame, FrameReader, Kind, ProtocolViolation, Setting

SETTINGS = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20}).serialize()
PING = PingFrame(0, opaque_data=b"12345678").serialize()
DATA = DataFrame(1, data=b"x" * 1000, flags=["END_STREAM"]).serialize()
OPENING = frames.PREFACE + SETTINGS + PING + DATA
EXPECTED = [Frame(Kind.SETTINGS, 0, 0, SETTINGS[9:]), Frame(Kind.PING, 0, 0, b"12345678"),
            Frame(Kind.DATA, frames.END_STREAM, 1, b"x" * 1000)]


def parse(data: bytes) -> list[HFrame]:
    """Every frame in ``data``, by hyperframe; the bytes must end on a frame's end."""
    out = []
    while data:
        frame, length = HFrame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        out.append(frame)
        data = data[9 + length:]
    return out


def violation(call: Callable[..., object], *args: object) -> ErrorCode:
    with pytest.raises(ProtocolViolation) as err:
        call(*args)
    return err.value.code


def test_the_opening_in_one_piece() -> None:
    assert FrameReader().feed(OPENING) == EXPECTED


def test_the_opening_byte_by_byte() -> None:
    reader = FrameReader()
    got: list[Frame] = []
    for i in range(len(OPENING)):
        new = reader.feed(OPENING[i:i + 1])
        got += new
        # a frame comes out exactly with its last byte, not before
        ends = {len(frames.PREFACE) + len(SETTINGS), len(OPENING) - len(DATA), len(OPENING)}
        assert bool(new) == (i + 1 in ends), i
    assert got == EXPECTED


@pytest.mark.parametrize("seed", range(20))
def test_frames_split_across_reads_at_random(seed: int) -> None:
    rng = random.Random(seed)
    data = OPENING + DATA * 5 + PING
    reader, got, pos = FrameReader(), [], 0
    while pos < len(data):
        step = rng.randint(1, 40)
        got += reader.feed(data[pos:pos + step])
        pos += step
    assert got == EXPECTED + EXPECTED[2:] * 5 + EXPECTED[1:2]


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\n", b"X", frames.PREFACE[:10] + b"?"],
                         ids=["http1", "one-byte", "wrong-late"])
def test_garbage_instead_of_the_preface(data: bytes) -> None:
    assert violation(FrameReader().feed, data) == ErrorCode.PROTOCOL_ERROR


def test_garbage_found_in_a_later_read() -> None:
    reader = FrameReader()
    assert reader.feed(frames.PREFACE[:5]) == []
    assert violation(reader.feed, b"GET ") == ErrorCode.PROTOCOL_ERROR


def test_a_first_frame_other_than_settings() -> None:
    assert violation(FrameReader().feed, frames.PREFACE + PING) == ErrorCode.PROTOCOL_ERROR


def test_a_frame_past_16384_bytes_is_refused_from_its_header() -> None:
    reader = FrameReader()
    reader.feed(frames.PREFACE + SETTINGS)
    reader.feed(DataFrame(1, data=b"x" * 16384).serialize())  # the largest allowed: taken
    head = (16385).to_bytes(3, "big") + bytes((Kind.DATA, 0)) + (1).to_bytes(4, "big")
    assert violation(reader.feed, head) == ErrorCode.FRAME_SIZE_ERROR  # its payload never awaited


def test_the_reserved_stream_id_bit_is_masked() -> None:
    reader = FrameReader()
    reader.feed(frames.PREFACE + SETTINGS)
    raw = frames.build(Kind.DATA, 0, 0x8000_0003, b"ab")
    assert reader.feed(raw) == [Frame(Kind.DATA, 0, 3, b"ab")]


@pytest.mark.parametrize("end_stream", [True, False])
def test_a_large_header_block_goes_as_headers_and_continuations(end_stream: bool) -> None:
    block = bytes(random.Random(1).randrange(256) for _ in range(40000))
    raw = frames.headers(5, block, end_stream, 16384)
    parsed = parse(raw)
    # the flags bytes as sent (hyperframe drops a flag a CONTINUATION does not define)
    first = frames.END_STREAM if end_stream else 0
    assert [raw[i * (9 + 16384) + 4] for i in range(3)] == [first, 0, frames.END_HEADERS]
    assert [type(f) for f in parsed] == [HeadersFrame, ContinuationFrame, ContinuationFrame]
    assert [len(f.data) for f in parsed] == [16384, 16384, 40000 - 2 * 16384]
    assert b"".join(f.data for f in parsed) == block
    assert all(f.stream_id == 5 for f in parsed)
    assert [set(f.flags) for f in parsed] == [{"END_STREAM"} if end_stream else set(), set(), {"END_HEADERS"}]


@pytest.mark.parametrize("size", [0, 100, 16384])
def test_a_header_block_that_fits_is_one_headers_frame(size: int) -> None:
    parsed = parse(frames.headers(1, b"h" * size, True, 16384))
    assert len(parsed) == 1 and isinstance(parsed[0], HeadersFrame)
    assert set(parsed[0].flags) == {"END_HEADERS", "END_STREAM"} and parsed[0].data == b"h" * size


def test_settings_window_update_rst_stream_and_goaway_as_hyperframe_reads_them() -> None:
    built = (frames.settings({Setting.MAX_CONCURRENT_STREAMS: 256, Setting.INITIAL_WINDOW_SIZE: 1 << 20})
             + frames.window_update(0, (1 << 31) - 1) + frames.window_update(7, 1)
             + frames.rst_stream(9, ErrorCode.REFUSED_STREAM)
             + frames.goaway(11, ErrorCode.ENHANCE_YOUR_CALM, "calm down") + frames.goaway(0, ErrorCode.NO_ERROR))
    settings, window, window7, rst, goaway, bare = parse(built)
    assert isinstance(settings, SettingsFrame) and settings.stream_id == 0 and not settings.flags
    assert settings.settings == {SettingsFrame.MAX_CONCURRENT_STREAMS: 256, SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20}
    assert isinstance(window, WindowUpdateFrame) and (window.stream_id, window.window_increment) == (0, (1 << 31) - 1)
    assert (window7.stream_id, window7.window_increment) == (7, 1)
    assert isinstance(rst, RstStreamFrame) and (rst.stream_id, rst.error_code) == (9, 7)
    assert isinstance(goaway, GoAwayFrame) and goaway.stream_id == 0
    assert (goaway.last_stream_id, goaway.error_code, goaway.additional_data) == (11, 11, b"calm down")
    assert (bare.last_stream_id, bare.error_code, bare.additional_data) == (0, 0, b"")


def test_a_goaways_reason_is_cut_at_256_bytes() -> None:
    (goaway,) = parse(frames.goaway(1, ErrorCode.PROTOCOL_ERROR, "r" * 1000))
    assert goaway.additional_data == b"r" * 256


def test_data_head_heads_its_payload() -> None:
    (data,) = parse(frames.data_head(3, 5) + b"hello")
    assert isinstance(data, DataFrame) and (data.stream_id, data.data, set(data.flags)) == (3, b"hello", set())


def read_back(raw: bytes) -> Frame:
    """One frame that hyperframe serialized, as our reader cuts it."""
    (frame,) = FrameReader().feed(frames.PREFACE + SETTINGS + raw)[1:]
    return frame


@pytest.mark.parametrize("pad", [0, 1, 200])
def test_padded_data_from_hyperframe(pad: int) -> None:
    raw = DataFrame(1, data=b"body", pad_length=pad, flags=["PADDED"]).serialize()
    assert frames.unpadded(read_back(raw)) == b"body"


@pytest.mark.parametrize("flags", [["PADDED"], ["PRIORITY"], ["PADDED", "PRIORITY"], []])
def test_headers_with_padding_and_priority_from_hyperframe(flags: list[str]) -> None:
    frame = HeadersFrame(3, data=b"block", flags=flags + ["END_HEADERS"])
    frame.depends_on, frame.stream_weight = 1, 200
    frame.pad_length = 7 if "PADDED" in flags else 0  # hyperframe writes the padding whatever the flag
    assert frames.unpadded(read_back(frame.serialize())) == b"block"


def test_priority_flag_on_data_is_no_priority() -> None:
    frame = Frame(Kind.DATA, frames.PRIORITY_FLAG, 1, b"12345")  # 0x20 means nothing on DATA
    assert frames.unpadded(frame) == b"12345"


@pytest.mark.parametrize(("kind", "flags", "payload", "code"), [
    (Kind.DATA, frames.PADDED, b"", ErrorCode.PROTOCOL_ERROR),  # no room for the pad length
    (Kind.DATA, frames.PADDED, b"\x03abc", None),  # pad as long as what follows: empty content
    (Kind.DATA, frames.PADDED, b"\x04abc", ErrorCode.PROTOCOL_ERROR),  # pad as long as the payload
    (Kind.DATA, frames.PADDED, b"\xffabc", ErrorCode.PROTOCOL_ERROR),
    (Kind.HEADERS, frames.PRIORITY_FLAG, b"1234", ErrorCode.FRAME_SIZE_ERROR),  # no room for priority
    # RFC 9113 §6.2: "Padding that exceeds the size remaining for the field block fragment MUST be
    # treated as a PROTOCOL_ERROR", also when the priority fits but the padding does not.
    pytest.param(Kind.HEADERS, frames.PRIORITY_FLAG | frames.PADDED, b"\x0512345", ErrorCode.PROTOCOL_ERROR),
    pytest.param(Kind.HEADERS, frames.PRIORITY_FLAG | frames.PADDED, b"\x0112345", ErrorCode.PROTOCOL_ERROR),
], ids=["empty", "all-pad", "pad-eq-len", "pad-past", "short-priority", "pad-past-priority", "pad-into-priority"])
def test_bad_padding(kind: Kind, flags: int, payload: bytes, code: ErrorCode | None) -> None:
    frame = Frame(kind, flags, 1, payload)
    if code is None:
        assert frames.unpadded(frame) == b""
    else:
        assert violation(frames.unpadded, frame) == code


def test_parse_settings() -> None:
    payload = SettingsFrame(0, settings={1: 0, 4: (1 << 31) - 1, 0x99: 5}).serialize()[9:]
    assert sorted(frames.parse_settings(payload)) == [(1, 0), (4, (1 << 31) - 1), (0x99, 5)]
    assert frames.parse_settings(b"") == []


@pytest.mark.parametrize("length", [1, 5, 7, 13])
def test_parse_settings_of_a_bad_length(length: int) -> None:
    assert violation(frames.parse_settings, b"\0" * length) == ErrorCode.FRAME_SIZE_ERROR


def test_number() -> None:
    assert frames.number(b"\x80\0\0\x05", Kind.WINDOW_UPDATE) == 5  # the reserved bit dropped
    assert frames.number(b"\x80\0\0\x05", Kind.RST_STREAM) == 0x8000_0005  # a code keeps all 32 bits


@pytest.mark.parametrize("length", [0, 3, 5, 8])
@pytest.mark.parametrize("kind", [Kind.WINDOW_UPDATE, Kind.RST_STREAM])
def test_number_of_a_bad_length(kind: Kind, length: int) -> None:
    assert violation(frames.number, b"\1" * length, kind) == ErrorCode.FRAME_SIZE_ERROR
