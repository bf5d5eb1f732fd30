"""SPDY/3.1 frames against bytes laid out by hand from the draft's diagrams (section 2.2, 2.6), and
the limits that keep a peer from making us allocate."""
from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest

from cri.streaming.spdy_errors import GoAwayStatus, ProtocolError, RstStatus
from cri.streaming.spdy_frames import (
    FLAG_FIN,
    FLAG_UNIDIRECTIONAL,
    Data,
    Frame,
    GoAway,
    Headers,
    Limits,
    Ping,
    RstStream,
    Setting,
    SettingId,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
    decode_frame,
    encode_frame,
    parse_frame_header,
)
from cri.streaming.spdy_headers import DICTIONARY, HeaderDeflater, HeaderInflater

LIMITS = Limits()
# The zlib header of a stream primed with the SPDY/3 dictionary: CMF 0x78, FLG 0xbb (FDICT set,
# check bits), then the dictionary's Adler-32, which spdystream's dictionary has and ours must.
ZLIB_DICT_HEADER = bytes.fromhex("78bb" "e3c6a7c2")


def decode(raw: bytes, inflater: HeaderInflater | None = None) -> Frame | None:
    header = parse_frame_header(raw[:8], LIMITS)
    assert header.length == len(raw) - 8
    return decode_frame(header, raw[8:], inflater or HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers))


def stored(block: bytes) -> bytes:
    """A non-final stored deflate block: what a zlib sync flush of data looks like, by hand."""
    return b"\x00" + struct.pack("<HH", len(block), len(block) ^ 0xFFFF) + block


def pairs(*items: tuple[bytes, bytes]) -> bytes:
    out = struct.pack(">I", len(items))
    for name, value in items:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out


GOLDEN: list[tuple[Frame, str]] = [
    (Ping(1), "8003 0006 00000004 00000001"),
    (RstStream(1, RstStatus.CANCEL), "8003 0003 00000008 00000001 00000005"),
    (GoAway(5, GoAwayStatus.PROTOCOL_ERROR), "8003 0007 00000008 00000005 00000001"),
    (WindowUpdate(3, 0x8000), "8003 0009 00000008 00000003 00008000"),
    (WindowUpdate(0, 0x7FFFFFFF), "8003 0009 00000008 00000000 7fffffff"),
    (Settings((Setting(SettingId.INITIAL_WINDOW_SIZE, 0x10000), Setting(SettingId.MAX_CONCURRENT_STREAMS, 100, 1))),
     "8003 0004 00000014 00000002 00000007 00010000 01000004 00000064"),
    (Data(1, b"hi", FLAG_FIN), "00000001 01000002 6869"),
    (Data(0x7FFFFFFF, b""), "7fffffff 00000000"),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN, ids=[type(f).__name__ for f, _ in GOLDEN])
def test_frames_without_headers_match_the_draft_layout_both_ways(frame: Frame, wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert encode_frame(frame, HeaderDeflater()) == raw
    assert decode(raw) == frame


def test_a_syn_stream_laid_out_by_hand_decodes() -> None:
    block = pairs((b"streamtype", b"data"), (b"port", b"8080"), (b"requestid", b"0"))
    compressed = ZLIB_DICT_HEADER + stored(block)
    fixed = bytes.fromhex("00000003" "00000001" "a0" "00")  # stream 3, associated to 1, priority 5
    raw = bytes.fromhex("80030001") + struct.pack(">I", (FLAG_FIN | FLAG_UNIDIRECTIONAL) << 24
                                                 | len(fixed) + len(compressed)) + fixed + compressed
    assert decode(raw) == SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"},
                                    FLAG_FIN | FLAG_UNIDIRECTIONAL, associated_id=1, priority=5)


# Written by moby/spdystream v0.5.1's framer (Go's compress/zlib, best compression), as kubectl's
# and crictl's remotecommand client opens its error stream, then its stdin stream with FIN.
SPDYSTREAM_SYN_1 = "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff"
SPDYSTREAM_SYN_3 = "800300010100001700000003000000000000c22e555c92929907000000ffff"


def test_syn_streams_written_by_spdystream_decode_on_one_context() -> None:
    inflater = HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers)
    assert decode(bytes.fromhex(SPDYSTREAM_SYN_1), inflater) == SynStream(1, {"streamtype": "error"})
    assert decode(bytes.fromhex(SPDYSTREAM_SYN_3), inflater) == SynStream(3, {"streamtype": "stdin"}, FLAG_FIN)
    with pytest.raises(ProtocolError):
        decode(bytes.fromhex(SPDYSTREAM_SYN_3))  # without the context the first left


def test_header_frames_round_trip_over_one_context_per_direction() -> None:
    deflater = HeaderDeflater()
    inflater = HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers)
    frames: list[Frame] = [
        SynStream(1, {"streamtype": "error"}, priority=3),
        SynStream(3, {"streamtype": "stdout"}),
        SynReply(1, {}),
        Headers(3, {"x": "a\x00b", "empty": ""}, FLAG_FIN),
        SynStream(5, {"streamtype": "stderr", "unicode": "héllo"}, FLAG_FIN),
    ]
    for frame in frames:
        assert decode(encode_frame(frame, deflater), inflater) == frame


def test_a_second_header_block_needs_the_context_the_first_left() -> None:
    deflater = HeaderDeflater()
    headers = {"streamtype": "portforward-data", "port": "12345", "requestid": "17"}
    first = deflater.compress(headers)
    second = deflater.compress(headers)
    assert first.startswith(ZLIB_DICT_HEADER) and not second.startswith(ZLIB_DICT_HEADER)
    assert len(second) < len(first), "the repeat did not refer back to the first block"
    shared = HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers)
    assert shared.decompress(first) == headers
    assert shared.decompress(second) == headers
    with pytest.raises(ProtocolError):
        HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers).decompress(second)


def test_hand_made_blocks_on_one_context() -> None:
    inflater = HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers)
    assert inflater.decompress(ZLIB_DICT_HEADER + stored(pairs((b"a", b"1")))) == {"a": "1"}
    assert inflater.decompress(stored(pairs((b"b", b"2"), (b"c", b"")))) == {"b": "2", "c": ""}


def test_an_over_long_control_frame_is_refused_from_its_header_alone() -> None:
    limits = Limits(max_control_payload=100)
    with pytest.raises(ProtocolError, match="control frame of 101 bytes"):
        parse_frame_header(bytes.fromhex("80030001 00000065"), limits)
    assert parse_frame_header(bytes.fromhex("80030001 00000064"), limits).length == 100
    assert parse_frame_header(bytes.fromhex("00000001 00ffffff"), limits).length == 0xFFFFFF  # DATA: in pieces


def test_a_header_block_that_inflates_past_the_limit_is_refused() -> None:
    inflater = HeaderInflater(max_block=4096, max_headers=LIMITS.max_headers)
    compressor = zlib.compressobj(zdict=DICTIONARY)
    huge = pairs((b"x", b"y" * 16 * 1024 * 1024))
    packed = compressor.compress(huge) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(packed) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="inflates past 4096"):
            inflater.decompress(packed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"inflated {peak} bytes to find the block too large"


MALFORMED_BLOCKS = [
    (pairs(*[(b"h%d" % i, b"") for i in range(129)]), "129 pairs"),
    (struct.pack(">I", 0xFFFFFFFF), "4294967295 pairs"),
    (pairs((b"", b"v")), "not non-empty lowercase"),
    (pairs((b"Streamtype", b"v")), "not non-empty lowercase"),
    (pairs((b"a", b"1"), (b"a", b"2")), "appears twice"),
    (pairs((b"a", b"1"))[:-1], "overruns"),
    (struct.pack(">II", 1, 0xFFFFFFF0), "overruns"),
    (pairs((b"a", b"1")) + b"\x00", "after the last header"),
    (b"\x00\x00", "inside a length"),
]


@pytest.mark.parametrize(("block", "message"), MALFORMED_BLOCKS, ids=[m for _, m in MALFORMED_BLOCKS])
def test_malformed_header_blocks_are_protocol_errors(block: bytes, message: str) -> None:
    inflater = HeaderInflater(LIMITS.max_header_block, LIMITS.max_headers)
    with pytest.raises(ProtocolError, match=message):
        inflater.decompress(ZLIB_DICT_HEADER + stored(block))


def test_garbage_where_compressed_headers_belong_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="does not decompress"):
        HeaderInflater(1024, 16).decompress(b"\x78\xbb\x00\x00\x00\x00garbage")


@pytest.mark.parametrize(("wire", "message"), [
    ("8002 0006 00000004 00000001", "version 2"),
    ("8003 0003 00000008 00000001 00000000", "status 0"),
    ("8003 0003 00000008 00000000 00000001", "stream id 0"),
    ("8003 0003 00000004 00000001", "payload of 4 bytes"),
    ("8003 0006 00000008 00000001 00000001", "payload of 8 bytes"),
    ("8003 0007 00000004 00000001", "payload of 4 bytes"),
    ("8003 0009 00000008 00000001 00000000", "WINDOW_UPDATE of 0"),
    ("8003 0004 00000008 00000002 00000007", "cannot hold 2 entries"),
    ("8003 0004 0000000c ffffffff 00000007 00000001", "cannot hold 4294967295"),
    ("8003 0001 00000004 00000001", "payload of 4 bytes"),
    ("8003 0002 00000000", "payload of 0 bytes"),
    ("00000000 00000000", "stream 0"),
])
def test_malformed_frames_are_protocol_errors(wire: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode(bytes.fromhex(wire.replace(" ", "")))


def test_control_frames_of_unknown_types_are_ignored() -> None:
    assert decode(bytes.fromhex("8003 000a 00000002 abcd".replace(" ", ""))) is None  # CREDENTIAL, deprecated


def test_the_reserved_top_bit_of_ids_is_ignored() -> None:
    assert decode(bytes.fromhex("8003 0009 00000008 80000003 80000010".replace(" ", ""))) == WindowUpdate(3, 16)


def test_frames_we_could_not_put_on_the_wire_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_frame(Data(0, b"x"), HeaderDeflater())
    with pytest.raises(ValueError, match="24 bits"):
        encode_frame(Data(1, bytes(1 << 24)), HeaderDeflater())
    with pytest.raises(ValueError, match="lowercase"):
        encode_frame(SynReply(1, {"Upper": "x"}), HeaderDeflater())
