"""A real Connection driven by a client made of the framing functions: streams opened, accepted or
refused, data both ways with and without FIN, PING, RST_STREAM both ways, GOAWAY both ways,
malformed input, and closing with reads and writes pending."""
from __future__ import annotations

import socket
import struct
import threading
import time
import zlib

import pytest

from cri.streaming.spdy import Connection
from cri.streaming.spdy_errors import ConnectionClosed, GoAwayStatus, RstStatus, StreamClosed, StreamReset
from cri.streaming.spdy_frames import (
    FLAG_FIN,
    FLAG_UNIDIRECTIONAL,
    Data,
    GoAway,
    Headers,
    Limits,
    Ping,
    RstStream,
    SynReply,
    SynStream,
    WindowUpdate,
    encode_frame,
)
from cri.streaming.spdy_headers import DICTIONARY, HeaderDeflater
from cri.streaming.spdy_stream import Stream
from tests.unit.streaming.spdyclient import WAIT, Background, Peer, bounded, serve

EXEC = {"streamtype": "stdout"}


def test_a_stream_carries_its_headers_and_data_both_ways_until_both_sides_send_fin() -> None:
    with serve() as s:
        s.peer.open(1, {"streamtype": "portforward-data", "port": "8080", "requestid": "0"})
        stream = s.next_stream()
        assert (stream.id, dict(stream.headers)) == (1, {"streamtype": "portforward-data", "port": "8080",
                                                          "requestid": "0"})
        s.peer.send(Data(1, b"hello "), Data(1, b"world", FLAG_FIN))
        assert bounded(lambda: stream.read(6)) == b"hello "
        assert bounded(stream.read) == b"world"
        assert bounded(stream.read) == b"", "FIN read as EOF"
        assert bounded(stream.read) == b"", "EOF stays EOF"
        stream.write(b"reply")
        assert s.peer.recv() == Data(1, b"reply")
        stream.close()
        assert s.peer.recv() == Data(1, b"", FLAG_FIN)
        stream.close()  # twice: nothing more is sent
        with pytest.raises(StreamClosed):
            stream.write(b"late")
        s.peer.send(Data(1, b"after both FINs"))
        assert s.peer.recv() == RstStream(1, RstStatus.INVALID_STREAM), "a closed stream was kept"


def test_fin_on_syn_stream_and_on_headers_end_the_peers_side() -> None:
    with serve() as s:
        s.peer.open(1, EXEC, FLAG_FIN)
        s.peer.open(3, EXEC)
        first, second = s.next_stream(), s.next_stream()
        assert bounded(first.read) == b""
        s.peer.send(Headers(3, {"trailer": "x"}, FLAG_FIN))
        assert bounded(second.read) == b""
        first.write(b"still ours to send")
        assert s.peer.recv() == Data(1, b"still ours to send")


def test_data_after_the_peers_fin_resets_the_stream() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Data(1, b"", FLAG_FIN), Data(1, b"more"))
        assert s.peer.recv() == RstStream(1, RstStatus.STREAM_ALREADY_CLOSED)
        error = bounded(lambda: pytest.raises(StreamReset, stream.read).value)
        assert (error.status, error.by_peer) == (RstStatus.STREAM_ALREADY_CLOSED, False)


def test_a_refused_stream_is_reset_and_the_connection_goes_on() -> None:
    def accept(stream: Stream) -> bool:
        if stream.headers.get("streamtype") == "bogus":
            return False
        if stream.headers.get("streamtype") == "crash":
            raise RuntimeError("handler bug")
        return True

    with serve(accept) as s:
        s.peer.send(SynStream(1, {"streamtype": "bogus"}), SynStream(3, {"streamtype": "crash"}))
        assert s.peer.recv() == RstStream(1, RstStatus.REFUSED_STREAM)
        assert s.peer.recv() == RstStream(3, RstStatus.REFUSED_STREAM)
        s.peer.open(5, EXEC)
        assert s.next_stream().id == 5


def test_no_data_goes_out_before_the_syn_reply() -> None:
    written = threading.Event()

    def accept(stream: Stream) -> bool:
        def write() -> None:
            stream.write(b"eager")
            written.set()

        threading.Thread(target=write, daemon=True).start()
        time.sleep(0.2)  # the writer had time to overtake the reply
        return True

    with serve(accept) as s:
        s.peer.send(SynStream(1, EXEC))
        assert s.peer.recv() == SynReply(1, {})
        assert s.peer.recv() == Data(1, b"eager")
        assert written.wait(WAIT)


def test_the_handler_may_answer_on_the_stream_before_it_returns() -> None:
    def accept(stream: Stream) -> bool:
        stream.write(b"no error")  # a port-forward error stream with nothing to report closes at once
        stream.close()
        return True

    with serve(accept) as s:
        s.peer.send(SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}))
        assert [s.peer.recv() for _ in range(3)] == [SynReply(1, {}), Data(1, b"no error"), Data(1, b"", FLAG_FIN)]
        s.peer.open(3, EXEC)  # the reader went on


def test_streams_are_kept_apart() -> None:
    with serve() as s:
        s.peer.open(1, {"streamtype": "stdin"})
        s.peer.open(3, {"streamtype": "resize"})
        stdin, resize = s.next_stream(), s.next_stream()
        s.peer.send(Data(3, b'{"Width":80}'), Data(1, b"ls\n"), Data(3, b"", FLAG_FIN), Data(1, b"", FLAG_FIN))
        assert bounded(resize.read) == b'{"Width":80}'
        assert bounded(stdin.read) == b"ls\n"
        assert (bounded(resize.read), bounded(stdin.read)) == (b"", b"")


def test_a_unidirectional_stream_is_not_ours_to_send_on() -> None:
    with serve() as s:
        s.peer.open(1, EXEC, FLAG_UNIDIRECTIONAL)
        stream = s.next_stream()
        with pytest.raises(StreamClosed):
            stream.write(b"x")


def test_pings_from_the_client_are_answered_and_even_ones_ignored() -> None:
    with serve() as s:
        s.peer.send(Ping(1), Ping(2), Ping(0xFFFFFFFF))
        assert s.peer.recv() == Ping(1)
        assert s.peer.recv() == Ping(0xFFFFFFFF), "an even (server) ping was echoed"


def test_a_reset_by_the_peer_fails_pending_and_later_reads_and_writes() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        reader = Background(stream.read)
        assert reader.blocked_for(0.2)
        s.peer.send(RstStream(1, RstStatus.CANCEL))
        error = reader.error()
        assert isinstance(error, StreamReset) and (error.status, error.by_peer) == (RstStatus.CANCEL, True)
        assert stream.reset_error is not None and stream.reset_error.by_peer
        with pytest.raises(StreamReset):
            stream.write(b"x")
        stream.reset()  # never answer a reset with a reset
        stream.close()
        s.peer.send(Ping(7))
        assert s.peer.recv() == Ping(7), "a frame was sent for the reset stream"


def test_a_reset_drops_what_was_not_read_yet() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Data(1, b"never read"), RstStream(1, RstStatus.CANCEL), Ping(1))
        assert s.peer.recv() == Ping(1)  # the frames before it were handled
        with pytest.raises(StreamReset):
            stream.read()


def test_a_reset_by_us_reaches_the_peer_and_fails_our_pending_read() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        reader = Background(stream.read)
        assert reader.blocked_for(0.2)
        stream.reset(RstStatus.INTERNAL_ERROR)
        assert s.peer.recv() == RstStream(1, RstStatus.INTERNAL_ERROR)
        error = reader.error()
        assert isinstance(error, StreamReset) and not error.by_peer
        s.peer.send(RstStream(1, RstStatus.CANCEL), Data(1, b"in flight"))
        assert s.peer.recv() == RstStream(1, RstStatus.INVALID_STREAM)


def test_data_and_headers_for_streams_never_opened_are_answered_with_invalid_stream() -> None:
    with serve() as s:
        s.peer.send(Data(9, b"x"), Headers(11, {}), SynReply(2, {}), RstStream(13, RstStatus.CANCEL), Ping(1))
        assert [s.peer.recv() for _ in range(4)] == [RstStream(9, RstStatus.INVALID_STREAM),
                                                    RstStream(11, RstStatus.INVALID_STREAM),
                                                    RstStream(2, RstStatus.INVALID_STREAM), Ping(1)]


def test_too_many_open_streams_are_refused() -> None:
    with serve(limits=Limits(max_streams=2)) as s:
        s.peer.open(1, EXEC)
        s.peer.open(3, EXEC)
        s.peer.send(SynStream(5, EXEC))
        assert s.peer.recv() == RstStream(5, RstStatus.REFUSED_STREAM)
        s.next_stream().reset()
        assert s.peer.recv() == RstStream(1, RstStatus.CANCEL)
        s.peer.open(7, EXEC)


def test_after_the_peers_goaway_open_streams_finish_and_new_ones_are_refused() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(GoAway(0, GoAwayStatus.OK), SynStream(3, EXEC))
        assert s.peer.recv() == RstStream(3, RstStatus.REFUSED_STREAM)
        assert s.conn.goaway_received == GoAway(0, GoAwayStatus.OK)
        stream.write(b"goes on")
        assert s.peer.recv() == Data(1, b"goes on")
        assert not s.conn.closed
        s.peer.sock.close()  # spdystream closes once its streams are done
        assert s.conn.wait_closed(WAIT)


def test_a_goaway_with_nothing_open_closes_the_connection() -> None:
    with serve() as s:
        s.peer.open(1, EXEC, FLAG_FIN)
        s.next_stream().close()
        assert s.peer.recv() == Data(1, b"", FLAG_FIN)
        s.peer.send(GoAway(1, GoAwayStatus.OK))
        assert s.peer.recv() == GoAway(1, GoAwayStatus.OK)
        assert s.peer.at_eof()


def test_close_sends_goaway_and_fails_pending_reads_and_writes() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        s.peer.open(3, EXEC)
        s.peer.send(SynStream(5, EXEC, FLAG_UNIDIRECTIONAL))
        s.peer.recv()
        first, second, third = s.next_stream(), s.next_stream(), s.next_stream()
        s.peer.send(Data(3, b"arrived before the close"), WindowUpdate(1, 1), Ping(1))  # the peer keeps windows
        assert s.peer.recv() == Ping(1)
        writer = Background(lambda: first.write(bytes(70_000)))
        received = 0
        while received < 65_536:  # the connection's window
            frame = s.peer.recv()
            assert isinstance(frame, Data)
            received += len(frame.data)
        assert received == 65_536
        reader = Background(third.read)
        assert writer.blocked_for(0.2) and reader.blocked_for(0)
        closer = Background(s.conn.close)
        assert isinstance(writer.error(), ConnectionClosed)
        assert isinstance(reader.error(), ConnectionClosed)
        assert s.peer.recv() == GoAway(5, GoAwayStatus.OK)
        assert s.peer.at_eof()
        s.peer.sock.close()
        closer.result()
        assert s.conn.wait_closed(0) and s.conn.closed
        assert bounded(second.read) == b"arrived before the close", "what had arrived was dropped"
        with pytest.raises(ConnectionClosed):
            second.read()
        with pytest.raises(ConnectionClosed):
            second.write(b"x")
        second.close()  # no error: there is nothing left to close
        second.reset()


def test_close_does_not_hang_on_a_writer_stuck_on_a_peer_that_does_not_read() -> None:
    with serve(linger=0.2) as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        writer = Background(lambda: stream.write(bytes(64 << 20)))
        assert writer.blocked_for(0.3), "the socket took 64 MiB without the peer reading"
        started = time.monotonic()
        bounded(s.conn.close)
        assert time.monotonic() - started < 2
        assert isinstance(writer.error(), ConnectionClosed)
        assert s.conn.wait_closed(0)


def test_a_peer_that_stops_sending_and_reading_ends_the_connection_despite_a_stuck_writer() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        writer = Background(lambda: stream.write(bytes(64 << 20)))
        assert writer.blocked_for(0.3)
        s.peer.sock.shutdown(socket.SHUT_WR)
        assert s.conn.wait_closed(WAIT)
        assert isinstance(writer.error(), ConnectionClosed)


def test_the_peer_going_away_ends_the_connection() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Data(1, b"last words"))
        s.peer.sock.shutdown(socket.SHUT_RDWR)
        assert s.conn.wait_closed(WAIT)
        assert bounded(stream.read) == b"last words"
        with pytest.raises(ConnectionClosed):
            stream.read()


def test_close_before_start_closes_the_socket() -> None:
    ours, theirs = socket.socketpair()
    conn = Connection(ours, lambda stream: True)
    conn.close()
    assert conn.wait_closed(0) and ours.fileno() == -1
    assert Peer(theirs).recv() == GoAway(0, GoAwayStatus.OK)
    theirs.close()


def test_bytes_read_past_the_http_upgrade_are_read_first() -> None:
    syn = encode_frame(SynStream(1, EXEC), HeaderDeflater())
    with serve(preread=syn[:5]) as s:
        s.peer.sock.sendall(syn[5:])
        assert s.peer.recv() == SynReply(1, {})


def test_the_time_of_the_last_frame_is_kept_for_an_idle_timeout() -> None:
    with serve() as s:
        before = s.conn.last_frame_at
        time.sleep(0.05)
        s.peer.send(Ping(1))
        s.peer.recv()
        after_ping = s.conn.last_frame_at
        assert after_ping > before
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        time.sleep(0.05)
        stream.write(b"x")
        assert s.conn.last_frame_at > after_ping


def _syn_with_block(stream_id: int, block: bytes) -> bytes:
    compressor = zlib.compressobj(zdict=DICTIONARY)
    packed = compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return _syn_with_packed(stream_id, packed)


def _syn_with_packed(stream_id: int, packed: bytes) -> bytes:
    payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + packed
    return struct.pack(">HHI", 0x8003, 1, len(payload)) + payload


MALFORMED = {
    "a control frame claiming 16 MiB": bytes.fromhex("80030008 00ffffff 00000001"),
    "SPDY/2": bytes.fromhex("80020006 00000004 00000001"),
    "a PING of 3 bytes": bytes.fromhex("80030006 00000003 000001"),
    "headers that are not zlib": _syn_with_packed(1, b"\x78\xbbjunkjunk"),
    "a header bomb": _syn_with_block(1, struct.pack(">II", 1, 1) + b"a" + struct.pack(">I", 8 << 20) + bytes(8 << 20)),
    "an even stream id": encode_frame(SynStream(2, EXEC), HeaderDeflater()),
    "a zero WINDOW_UPDATE": bytes.fromhex("80030009 00000008 00000001 00000000"),
}


@pytest.mark.parametrize("wire", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_answered_with_goaway_protocol_error(wire: bytes) -> None:
    with serve() as s:
        s.peer.sock.sendall(wire)
        assert s.peer.recv() == GoAway(0, GoAwayStatus.PROTOCOL_ERROR)
        assert s.peer.at_eof()
        assert s.conn.wait_closed(WAIT)


def test_a_protocol_error_fails_pending_reads() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        reader = Background(stream.read)
        s.peer.send(SynStream(2, EXEC))
        assert s.peer.recv() == GoAway(1, GoAwayStatus.PROTOCOL_ERROR)
        assert s.peer.at_eof()
        assert isinstance(reader.error(), ConnectionClosed)


def test_stream_ids_must_increase() -> None:
    with serve() as s:
        s.peer.open(5, EXEC)
        s.peer.send(SynStream(3, EXEC))
        assert s.peer.recv() == GoAway(5, GoAwayStatus.PROTOCOL_ERROR)
        assert s.peer.at_eof()
