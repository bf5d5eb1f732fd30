"""The pure part of the protocol: wire.py's decisions on headers and message framing, and
status.py's grpc-message encoding."""
from __future__ import annotations

import urllib.parse

import pytest

from cri.rpc import wire
from cri.rpc.status import StatusCode, encode_message, trailers
from cri.rpc.wire import WireError

HEAD = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/runtime.v1.RuntimeService/Version"),
        (b":authority", b"localhost"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]


def with_fields(changes: dict[bytes, bytes | None]) -> list[tuple[bytes, bytes]]:
    """HEAD with fields replaced, added, or (None) removed."""
    kept = [(k, v) for k, v in HEAD if k not in changes]
    return kept + [(k, v) for k, v in changes.items() if v is not None]


# -- parse_timeout --------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    (b"2H", 7200.0), (b"3M", 180.0), (b"5S", 5.0), (b"250m", 0.25), (b"1500u", 0.0015), (b"7n", 7e-9),
    (b"99999999S", 99999999.0), (b"00000001m", 0.001), (b"0S", 0.0),
])
def test_parse_timeout_units(value: bytes, seconds: float) -> None:
    assert wire.parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"5", b"5s", b"5x", b"123456789S", b"-5S", b"+5S", b" 5S", b"5 S",
                                   b"1.5S", b"\xd9\xa3S"])
def test_parse_timeout_malformed_is_internal(value: bytes) -> None:
    with pytest.raises(WireError) as err:
        wire.parse_timeout(value)
    assert err.value.code == StatusCode.INTERNAL


# -- read_head ------------------------------------------------------------------------------------

def test_read_head_reads_path_and_timeout() -> None:
    head = wire.read_head(with_fields({b"grpc-timeout": b"1500m"}))
    assert head.path == "/runtime.v1.RuntimeService/Version"
    assert head.timeout == pytest.approx(1.5)
    assert wire.read_head(HEAD).timeout is None


@pytest.mark.parametrize("content_type", [b"application/grpc", b"application/grpc+proto"])
def test_read_head_takes_grpc_content_types(content_type: bytes) -> None:
    assert wire.read_head(with_fields({b"content-type": content_type})).path.endswith("/Version")


def test_read_head_takes_identity_encoding() -> None:
    assert wire.read_head(with_fields({b"grpc-encoding": b"identity"})).timeout is None


@pytest.mark.parametrize("fields", [
    {b":method": b"GET"}, {b":method": None},
    {b"content-type": b"application/json"}, {b"content-type": None}, {b"content-type": b"text/plain"},
    {b"grpc-encoding": b"gzip"}, {b"grpc-encoding": b"deflate"},
], ids=str)
def test_read_head_refuses_what_is_not_served(fields: dict[bytes, bytes | None]) -> None:
    with pytest.raises(WireError) as err:
        wire.read_head(with_fields(fields))
    assert err.value.code == StatusCode.UNIMPLEMENTED


def test_read_head_malformed_timeout_is_internal() -> None:
    with pytest.raises(WireError) as err:
        wire.read_head(with_fields({b"grpc-timeout": b"soon"}))
    assert err.value.code == StatusCode.INTERNAL


# -- declared_length, single_message, frame ----------------------------------------------------

@pytest.mark.parametrize("buffer", [b"", b"\0", b"\0\0\0\0"])
def test_declared_length_waits_for_the_whole_prefix(buffer: bytes) -> None:
    assert wire.declared_length(buffer, 100) is None


def test_declared_length_reads_the_prefix_alone() -> None:
    assert wire.declared_length(b"\0\0\0\1\0", 1000) == 256
    assert wire.declared_length(bytearray(b"\0\0\0\0\7abc"), 7) == 7  # at the limit is allowed


def test_declared_length_refuses_compressed() -> None:
    with pytest.raises(WireError) as err:
        wire.declared_length(b"\1\0\0\0\3abc", 100)
    assert err.value.code == StatusCode.UNIMPLEMENTED


def test_declared_length_over_limit_refused_from_the_prefix_alone() -> None:
    with pytest.raises(WireError) as err:
        wire.declared_length(b"\0" + (1 << 30).to_bytes(4, "big"), 16 << 20)
    assert err.value.code == StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(WireError) as err:
        wire.declared_length(b"\0\0\0\0\x08", 7)
    assert err.value.code == StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 300])
def test_frame_round_trip(payload: bytes) -> None:
    framed = wire.frame(payload)
    assert len(framed) == wire.PREFIX + len(payload)
    assert framed[:1] == b"\0"
    assert wire.declared_length(framed, len(payload)) == len(payload)
    assert wire.single_message(framed, len(payload)) == payload
    assert wire.single_message(bytearray(framed), len(payload)) == payload


@pytest.mark.parametrize("buffer", [b"", b"\0\0\0", b"\0\0\0\0\5abc", wire.frame(b"abc")[:-1]])
def test_single_message_truncated_is_internal(buffer: bytes) -> None:
    with pytest.raises(WireError) as err:
        wire.single_message(buffer, 100)
    assert err.value.code == StatusCode.INTERNAL


def test_single_message_refuses_two_messages() -> None:
    with pytest.raises(WireError) as err:
        wire.single_message(wire.frame(b"one") + wire.frame(b"two"), 100)
    assert err.value.code == StatusCode.UNIMPLEMENTED


def test_single_message_over_limit() -> None:
    with pytest.raises(WireError) as err:
        wire.single_message(wire.frame(b"x" * 11), 10)
    assert err.value.code == StatusCode.RESOURCE_EXHAUSTED


# -- status ---------------------------------------------------------------------------------------

def test_encode_message_keeps_printable_ascii() -> None:
    printable = "".join(chr(c) for c in range(0x20, 0x7F) if c != ord("%"))
    assert encode_message(printable) == printable.encode()


@pytest.mark.parametrize(("message", "encoded"), [
    ("100%", b"100%25"), ("a\nb", b"a%0Ab"), ("tab\there", b"tab%09here"), ("\x7f", b"%7F"),
    ("café", b"caf%C3%A9"), ("日本", b"%E6%97%A5%E6%9C%AC"), ("%25", b"%2525"),
])
def test_encode_message_percent_encodes(message: str, encoded: bytes) -> None:
    assert encode_message(message) == encoded
    assert urllib.parse.unquote(encoded.decode("ascii")) == message


def test_trailers() -> None:
    assert trailers(StatusCode.OK) == [(b"grpc-status", b"0")]
    assert trailers(StatusCode.UNAUTHENTICATED, "no%") == [(b"grpc-status", b"16"), (b"grpc-message", b"no%25")]
