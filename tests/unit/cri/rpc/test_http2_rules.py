"""HTTP/2's connection rules as the server keeps them, seen from a client written by hand over a raw
unix socket (frames.build out, a 9-byte-head cut in, hpack for the fields): PING and SETTINGS are
answered, flow control and frame sizes are kept both ways, and each broken rule costs what it must
(the stream, or the connection with a GOAWAY of the right code) and no more."""
from __future__ import annotations

import socket
from collections.abc import Callable

import hpack
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.rpc import frames, wire
from cri.rpc.frames import ACK, END_HEADERS, END_STREAM, ErrorCode, Frame, Kind, Setting
from tests.unit.cri.rpc.conftest import Served
from tests.unit.cri.rpc.test_hostile import ECHO, METHODS, call_echo, connect

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

def head(path: str) -> list[object]:
    return [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
            (b"content-type", b"application/grpc"), (b"te", b"trailers")]


class Peer:
    """A client by hand: it sends what a test builds and files what the server sends by kind,
    giving every DATA frame's bytes back to the connection's window (and the stream's, unless
    ``stream_updates`` is off) as it reads them."""

    def __init__(self, sock: socket.socket, settings: dict[Setting, int] | None = None) -> None:
        self.sock, self.buffer = sock, b""
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.stream_updates = True
        self.data: dict[int, bytearray] = {}
        self.sizes: list[int] = []  # every DATA frame's length
        self.ended: dict[int, dict[bytes, bytes]] = {}  # a stream's closing fields
        self.resets: dict[int, ErrorCode] = {}
        self.goaways: list[tuple[int, ErrorCode]] = []
        self.pings: list[bytes] = []
        self.acks = 0
        self.server_settings: dict[int, int] | None = None
        self.granted: dict[int, int] = {}  # WINDOW_UPDATE increments, by stream
        sock.sendall(frames.PREFACE + frames.settings(settings or {}))

    def send(self, *raw: bytes) -> None:
        self.sock.sendall(b"".join(raw))

    def request(self, stream_id: int, text: str = "", path: str = ECHO, extra: tuple[object, ...] = (),
                data: bool = True, huffman: bool = True) -> bytes:
        """A call's HEADERS and its request in one DATA frame (or the HEADERS alone, the stream open)."""
        block = self.encoder.encode(head(path) + list(extra), huffman=huffman)
        body = wire.frame(pb.VersionRequest(version=text).SerializeToString())
        return frames.headers(stream_id, block, False, frames.DEFAULT_FRAME_SIZE) + (
            frames.build(Kind.DATA, END_STREAM, stream_id, body) if data else b"")

    def frame(self) -> Frame | None:
        """The server's next frame; None once it closed."""
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3], "big"):
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:  # a unix socket closed with our bytes unread in it
                chunk = b""
            if not chunk:
                assert not self.buffer, "the server closed inside a frame"
                return None
            self.buffer += chunk
        end = 9 + int.from_bytes(self.buffer[:3], "big")
        got, self.buffer = self.buffer[:end], self.buffer[end:]
        return Frame(got[3], got[4], int.from_bytes(got[5:9], "big"), got[9:])

    def pump(self, done: Callable[[], bool]) -> None:
        while not done():
            frame = self.frame()
            assert frame is not None, f"the server closed the connection (GOAWAYs: {self.goaways})"
            self.apply(frame)

    def quiet(self, seconds: float) -> None:
        """Reads all the server sends for ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            self.pump(lambda: False)
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(5)

    def apply(self, frame: Frame) -> None:
        kind, flags, stream_id, payload = frame
        if kind == Kind.DATA:
            self.data.setdefault(stream_id, bytearray()).extend(payload)
            self.sizes.append(len(payload))
            if payload:
                self.send(frames.window_update(0, len(payload)),
                          frames.window_update(stream_id, len(payload)) if self.stream_updates else b"")
        elif kind == Kind.HEADERS:
            assert flags & END_HEADERS, "our replies' fields fit one frame"
            fields = dict(self.decoder.decode(payload, raw=True))
            if flags & END_STREAM:
                self.ended[stream_id] = fields
        elif kind == Kind.RST_STREAM:
            self.resets[stream_id] = ErrorCode(frames.number(payload, Kind.RST_STREAM))
        elif kind == Kind.GOAWAY:
            self.goaways.append((int.from_bytes(payload[:4], "big"), ErrorCode(int.from_bytes(payload[4:8], "big"))))
        elif kind == Kind.PING:
            assert flags == ACK
            self.pings.append(payload)
        elif kind == Kind.SETTINGS:
            self.acks += flags == ACK
            if not flags:
                self.server_settings = dict(frames.parse_settings(payload))
        else:
            assert kind == Kind.WINDOW_UPDATE, f"unexpected {frame}"
            increment = frames.number(payload, Kind.WINDOW_UPDATE)
            self.granted[stream_id] = self.granted.get(stream_id, 0) + increment

    def reply(self, stream_id: int) -> tuple[bytes, dict[bytes, bytes]]:
        self.pump(lambda: stream_id in self.ended or stream_id in self.resets)
        assert stream_id in self.ended, f"stream {stream_id} reset: {self.resets[stream_id]!r}"
        return bytes(self.data.get(stream_id, b"")), self.ended[stream_id]

    def echo(self, stream_id: int, text: str) -> str:
        self.send(self.request(stream_id, text))
        data, fields = self.reply(stream_id)
        assert fields[b"grpc-status"] == b"0", fields
        return pb.VersionResponse.FromString(data[wire.PREFIX:]).version

    def violate(self, *raw: bytes) -> tuple[int, ErrorCode]:
        """Sends ``raw`` and a PING: the GOAWAY that must come instead of the PING's answer (its last
        stream id and code), then the close."""
        self.send(*raw, frames.build(Kind.PING, 0, 0, b"too late"))
        self.pump(lambda: bool(self.goaways or b"too late" in self.pings))
        assert self.goaways, "no GOAWAY: the server answered the PING sent after the violation"
        assert self.frame() is None, "the server kept the connection after its GOAWAY"
        return self.goaways[0]



def peer(served: Served, raw: list[socket.socket], **settings: int) -> Peer:
    return Peer(connect(served.path, raw), {Setting[name]: value for name, value in settings.items()})


def test_the_servers_first_frames_are_its_settings_and_a_connection_window(serve, raw) -> None:
    sock = connect(serve(METHODS).path, raw)
    client = Peer(sock)
    first, second = client.frame(), client.frame()
    assert first is not None and (first.kind, first.flags, first.stream_id) == (Kind.SETTINGS, 0, 0)
    settings = dict(frames.parse_settings(first.payload))
    assert settings[Setting.MAX_CONCURRENT_STREAMS] == 256 and settings[Setting.INITIAL_WINDOW_SIZE] == 1 << 20
    assert second == Frame(Kind.WINDOW_UPDATE, 0, 0, ((1 << 20) - 65535).to_bytes(4, "big"))
    client.pump(lambda: client.acks == 1)  # our SETTINGS, acknowledged
    client.send(frames.settings({Setting.INITIAL_WINDOW_SIZE: 1000}), frames.settings({}))
    client.pump(lambda: client.acks == 3)
    assert client.echo(1, "served") == "served"


def test_a_ping_is_answered_with_its_bytes_and_an_ack_is_not(serve, raw) -> None:
    client = peer(serve(METHODS), raw)
    client.send(frames.build(Kind.PING, ACK, 0, b"an-ack!!"), frames.build(Kind.PING, 0, 0, b"pingpong"),
                frames.build(Kind.PING, 0, 0, bytes(range(248, 256))))
    client.pump(lambda: len(client.pings) == 2)
    assert client.pings == [b"pingpong", bytes(range(248, 256))]


def test_a_continuation_flood_is_cut_off_and_other_clients_are_served(serve, raw) -> None:
    served = serve(METHODS)
    channel = served.channel()
    assert call_echo(channel, "before") == "before"
    client = peer(served, raw)
    chunk = b"\0" * 16384
    client.send(frames.build(Kind.HEADERS, 0, 1, chunk), *[frames.build(Kind.CONTINUATION, 0, 1, chunk)] * 3)
    client.quiet(0.3)
    assert not client.goaways, "64 KiB of header block is allowed"
    assert call_echo(channel, "during") == "during"
    assert client.violate(frames.build(Kind.CONTINUATION, 0, 1, b"\0")) == (0, ErrorCode.ENHANCE_YOUR_CALM)
    assert call_echo(channel, "after") == "after"


def test_request_fields_past_16_kib_are_resource_exhausted(serve, raw) -> None:
    # 3 KiB in the dynamic table, then five one-byte indexes to it: 18 KiB of fields from 3 KiB
    client = peer(serve(METHODS), raw)
    request = client.request(1, "big", extra=((b"x-pad", b"p" * 3000),) * 6)
    assert len(request) < 3200
    client.send(request)
    data, fields = client.reply(1)
    assert (data, fields[b"grpc-status"]) == (b"", b"8")
    assert client.echo(3, "served on") == "served on"  # the dynamic table followed the refused block


def test_a_header_block_of_64_kib_is_read_whole(serve, raw) -> None:
    # One literal over HEADERS and three CONTINUATIONs: 65536 bytes, the most that is no flood.
    fixed = len(hpack.Encoder().encode(head(ECHO) + [hpack.NeverIndexedHeaderTuple(b"x-pad", b"")], huffman=False))
    pad = hpack.NeverIndexedHeaderTuple(b"x-pad", b"p" * (65536 - (fixed - 1) - 4))  # its length takes 4 bytes
    client = peer(serve(METHODS), raw)
    request = client.request(1, "big", extra=(pad,), data=False, huffman=False)
    assert len(request) == 65536 + 4 * 9
    client.send(request, frames.build(Kind.DATA, END_STREAM, 1, b"\0" * 5))
    data, fields = client.reply(1)
    assert (data, fields[b"grpc-status"]) == (b"", b"8")
    assert client.echo(3, "served on") == "served on"


def test_a_connection_window_past_2_31_is_a_flow_control_error(serve, raw) -> None:
    client = peer(serve(METHODS), raw)
    client.send(frames.window_update(0, frames.MAX_WINDOW - 65535))  # exactly 2^31-1: allowed
    assert client.echo(1, "still") == "still"
    assert client.violate(frames.window_update(0, 1)) == (1, ErrorCode.FLOW_CONTROL_ERROR)


@pytest.mark.parametrize(("raw_frame", "code"), [
    (frames.window_update(0, 0), ErrorCode.PROTOCOL_ERROR),
    (frames.build(Kind.HEADERS, END_HEADERS | END_STREAM, 4, b"\x83"), ErrorCode.PROTOCOL_ERROR),  # even id
    (frames.build(Kind.CONTINUATION, END_HEADERS, 3, b"\x83"), ErrorCode.PROTOCOL_ERROR),  # no HEADERS
    (frames.build(Kind.SETTINGS, 0, 0, b"\0\4\0\0"), ErrorCode.FRAME_SIZE_ERROR),
    (frames.build(Kind.DATA, 0, 9, b"x"), ErrorCode.PROTOCOL_ERROR),  # a stream never opened
    (frames.rst_stream(0, ErrorCode.CANCEL), ErrorCode.PROTOCOL_ERROR),
], ids=["window-update-0", "even-stream", "stray-continuation", "short-settings", "idle-data", "rst-stream-0"])
def test_connection_errors_after_a_call(serve, raw, raw_frame: bytes, code: ErrorCode) -> None:
    client = peer(serve(METHODS), raw)
    assert client.echo(1, "first") == "first"
    assert client.violate(raw_frame) == (1, code)


@pytest.mark.parametrize("intruder", [
    frames.build(Kind.PING, 0, 0, b"12345678"),
    frames.build(Kind.DATA, END_STREAM, 1, b""),
    frames.build(Kind.HEADERS, END_HEADERS, 3, b"\x83"),
    frames.build(Kind.CONTINUATION, END_HEADERS, 3, b"\x83"),
    frames.build(0xFA, 0, 0, b"unknown"),  # ignored elsewhere, not inside a block (§6.10)
], ids=["ping", "data", "headers", "continuation-of-another-stream", "unknown-type"])
def test_a_frame_inside_a_header_block_is_a_protocol_error(serve, raw, intruder: bytes) -> None:
    client = peer(serve(METHODS), raw)
    assert client.violate(frames.build(Kind.HEADERS, 0, 1, b"\x83\x86"), intruder) == (0, ErrorCode.PROTOCOL_ERROR)


def test_headers_on_a_lower_stream_id_are_refused_and_the_connection_serves_on(serve, raw) -> None:
    client = peer(serve(METHODS), raw)
    assert client.echo(3, "three") == "three"
    stale = ((b"x-stale", b"kept in the table"),)
    client.send(client.request(1, "one", extra=stale))
    client.pump(lambda: 1 in client.resets)
    assert client.resets == {1: ErrorCode.STREAM_CLOSED} and 1 not in client.ended
    # the block of the refused stream was decoded all the same: this one's index to it resolves
    client.send(client.request(5, "five", extra=stale))
    data, fields = client.reply(5)
    assert fields[b"grpc-status"] == b"0" and pb.VersionResponse.FromString(data[5:]).version == "five"
