"""Streams over one connection, from the hand-made client of test_http2_rules: how many may be
open, the windows and frame sizes a reply keeps to as the client moves them, a request and reply
past every window, and calls the client resets before they start."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.rpc import frames, wire
from cri.rpc.frames import END_STREAM, ErrorCode, Kind, Setting
from cri.rpc.server import Method
from tests.unit.cri.rpc.conftest import wait_until
from tests.unit.cri.rpc.test_hostile import ECHO, METHODS, echo
from tests.unit.cri.rpc.test_http2_rules import peer

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

BIG = "/test.T/Big"


def big(request: pb.VersionRequest, context) -> pb.VersionResponse:
    return pb.VersionResponse(version="z" * int(request.version))


def big_stream(request: pb.VersionRequest, context) -> Iterator[pb.VersionResponse]:
    for _ in range(4):
        yield pb.VersionResponse(version="z" * (int(request.version) // 4))


BIG_METHODS = {**METHODS, BIG: Method(pb.VersionRequest, big, False),
               BIG + "Stream": Method(pb.VersionRequest, big_stream, True)}



def held(release: threading.Event, ran: list[str] | None = None) -> dict[str, Method]:
    """An echo whose calls wait for ``release`` (and note their requests in ``ran``)."""
    def hold(request: pb.VersionRequest, context) -> pb.VersionResponse:
        if ran is not None:
            ran.append(request.version)
        release.wait(10)
        return echo(request, context)

    return {ECHO: Method(pb.VersionRequest, hold, False)}


def test_streams_past_256_are_refused_and_the_rest_served(serve, raw) -> None:
    release = threading.Event()
    client = peer(serve(held(release)), raw)
    try:
        client.send(*[client.request(stream_id, str(stream_id)) for stream_id in range(1, 2 * 258, 2)])
        client.pump(lambda: len(client.resets) == 2)
        assert client.resets == {513: ErrorCode.REFUSED_STREAM, 515: ErrorCode.REFUSED_STREAM}
        assert not client.ended  # the first 256 all held
    finally:
        release.set()
    client.pump(lambda: len(client.ended) == 256)
    assert {s: f[b"grpc-status"] for s, f in client.ended.items()} == dict.fromkeys(range(1, 513, 2), b"0")
    assert client.echo(517, "after") == "after"


@pytest.mark.parametrize("path", [BIG, BIG + "Stream"], ids=["unary", "streaming"])
def test_a_stream_window_moved_by_settings_mid_reply(serve, raw, path: str) -> None:
    client = peer(serve(BIG_METHODS), raw, INITIAL_WINDOW_SIZE=16384)
    client.stream_updates = False  # only SETTINGS move the stream's window
    client.send(client.request(1, "200000", path=path))
    client.pump(lambda: len(client.data.get(1, b"")) >= 16384)
    client.quiet(0.3)
    assert len(client.data[1]) == 16384, "the server sent past the stream's window"
    # -16384, then -8192 after an update: still nothing may be sent
    client.send(frames.settings({Setting.INITIAL_WINDOW_SIZE: 0}), frames.window_update(1, 8192),
                frames.build(Kind.PING, 0, 0, b"applied?"))
    client.pump(lambda: bool(client.pings))  # both applied; then time for the reply's thread to (not) send
    client.quiet(0.3)
    assert (len(client.data[1]), client.acks) == (16384, 2)
    client.send(frames.settings({Setting.INITIAL_WINDOW_SIZE: 1 << 20}))
    data, fields = client.reply(1)
    messages = 1 if path == BIG else 4
    expected = wire.frame(pb.VersionResponse(version="z" * (200000 // messages)).SerializeToString()) * messages
    assert fields[b"grpc-status"] == b"0" and data == expected


@pytest.mark.parametrize("max_frame", [16384, 65536])
def test_a_reply_is_cut_to_the_clients_max_frame_size(serve, raw, max_frame: int) -> None:
    client = peer(serve(BIG_METHODS), raw, INITIAL_WINDOW_SIZE=1 << 20, MAX_FRAME_SIZE=max_frame)
    client.send(frames.window_update(0, 1 << 20), client.request(1, "200000", path=BIG))
    data, fields = client.reply(1)
    assert fields[b"grpc-status"] == b"0"
    assert data == wire.frame(pb.VersionResponse(version="z" * 200000).SerializeToString())
    assert max(client.sizes) == max_frame


def test_a_request_and_reply_larger_than_every_window_flow(serve, raw) -> None:
    # An honest client sending 3 MiB waits on the server's WINDOW_UPDATEs (its windows are 1 MiB);
    # it hangs (and times out) unless the server gives back both windows as it reads.
    client = peer(serve(METHODS, max_receive=4 << 20, max_send=4 << 20), raw, INITIAL_WINDOW_SIZE=1 << 20)
    text = "e" * (3 << 20)
    body = memoryview(wire.frame(pb.VersionRequest(version=text).SerializeToString()))
    client.send(client.request(1, data=False))
    client.pump(lambda: client.server_settings is not None)
    assert client.server_settings is not None
    stream_window = client.server_settings.get(Setting.INITIAL_WINDOW_SIZE, 65535)
    sent = 0
    while sent < len(body):
        room = min(65535 + client.granted.get(0, 0) - sent, stream_window + client.granted.get(1, 0) - sent,
                   frames.DEFAULT_FRAME_SIZE, len(body) - sent)
        if room <= 0:
            frame = client.frame()
            assert frame is not None
            client.apply(frame)
            continue
        last = sent + room == len(body)
        client.send(frames.build(Kind.DATA, END_STREAM if last else 0, 1, bytes(body[sent:sent + room])))
        sent += room
    assert client.granted.get(1, 0) > 0  # the stream's window, too, came back
    data, fields = client.reply(1)
    assert fields[b"grpc-status"] == b"0" and pb.VersionResponse.FromString(data[wire.PREFIX:]).version == text


def test_calls_reset_before_they_start_do_not_run(serve, raw) -> None:
    release, ran = threading.Event(), []
    client = peer(serve(held(release, ran), workers=1), raw)
    try:
        client.send(client.request(1, "1"))
        assert wait_until(lambda: ran == ["1"])  # the one worker is taken
        for stream_id in range(3, 603, 2):  # 300 calls opened and reset while they wait for it
            client.send(client.request(stream_id, str(stream_id)), frames.rst_stream(stream_id, ErrorCode.CANCEL))
        client.send(frames.build(Kind.PING, 0, 0, b"all read"))
        client.pump(lambda: bool(client.pings))
        # A reset call holds its stream's slot until its task is done: past 256, calls are refused.
        refused = sorted(s for s, code in client.resets.items() if code == ErrorCode.REFUSED_STREAM)
        assert refused == list(range(3 + 2 * 255, 603, 2))
    finally:
        release.set()
    # The slots come free as the one worker skips the reset calls; a refused call may be retried.
    stream_id = 603
    while True:
        client.send(client.request(stream_id, str(stream_id)))
        client.pump(lambda sid=stream_id: sid in client.ended or sid in client.resets)
        if stream_id in client.ended:
            break
        assert client.resets[stream_id] == ErrorCode.REFUSED_STREAM and stream_id < 2000
        stream_id += 2
    assert ran == ["1", str(stream_id)], f"{len(ran) - 2} calls ran after their client reset them"


def test_initial_window_size_past_an_open_streams_maximum(serve, raw) -> None:
    release = threading.Event()
    client = peer(serve(held(release)), raw)
    try:
        client.send(client.request(1, "held"), frames.window_update(1, frames.MAX_WINDOW - 65535))
        assert client.violate(frames.settings({Setting.INITIAL_WINDOW_SIZE: 65536})) == (
            1, ErrorCode.FLOW_CONTROL_ERROR)
    finally:
        release.set()
