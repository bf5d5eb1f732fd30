"""Flow control, both ways: a peer that keeps SPDY/3.1 windows holds our writers to them; a peer
that ignores them (as spdystream does) is held back by TCP; a slow reader never makes a stream
buffer more than its window, nor a connection more than its limit."""
from __future__ import annotations

import threading
import time

from cri.streaming.spdy_errors import GoAwayStatus, RstStatus
from cri.streaming.spdy_frames import (
    FLAG_FIN,
    Data,
    GoAway,
    Limits,
    Ping,
    RstStream,
    Setting,
    SettingId,
    Settings,
    WindowUpdate,
)
from cri.streaming.spdy_stream import INITIAL_WINDOW, SEND_CHUNK, Stream
from tests.unit.streaming.spdyclient import WAIT, Background, Peer, bounded, serve

EXEC = {"streamtype": "stdout"}


def pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def receive(peer: Peer, stream_id: int, size: int) -> bytes:
    """Reads DATA for stream_id until size bytes came; fails on any other frame."""
    data = b""
    while len(data) < size:
        frame = peer.recv()
        assert isinstance(frame, Data) and frame.stream_id == stream_id, frame
        assert len(frame.data) <= SEND_CHUNK
        data += frame.data
    assert len(data) == size
    return data


def sync(peer: Peer) -> None:
    """Returns once the connection has handled every frame sent before."""
    peer.send(Ping(99))
    assert peer.recv() == Ping(99)


def test_a_writer_waits_for_the_stream_window_and_the_connection_window() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Settings((Setting(SettingId.INITIAL_WINDOW_SIZE, INITIAL_WINDOW),)))  # keeps windows
        sync(s.peer)
        body = pattern(150_000)
        writer = Background(lambda: stream.write(body))
        got = receive(s.peer, 1, INITIAL_WINDOW)
        assert writer.blocked_for(0.2) and s.peer.quiet_for(0.1), "wrote past the peer's window"
        s.peer.send(WindowUpdate(1, 50_000))
        assert writer.blocked_for(0.2) and s.peer.quiet_for(0.1), "wrote past the connection's window"
        s.peer.send(WindowUpdate(0, 30_000))
        got += receive(s.peer, 1, 30_000)
        assert writer.blocked_for(0.1) and s.peer.quiet_for(0.1)
        s.peer.send(WindowUpdate(0, 200_000))
        got += receive(s.peer, 1, 20_000)  # what is left of the stream's window
        assert writer.blocked_for(0.1) and s.peer.quiet_for(0.1)
        s.peer.send(WindowUpdate(1, 100_000))
        got += receive(s.peer, 1, 150_000 - len(got))
        writer.result()
        assert got == body


def test_settings_change_the_window_of_new_and_open_streams() -> None:
    with serve() as s:
        s.peer.send(Settings((Setting(SettingId.INITIAL_WINDOW_SIZE, 1000),)))
        s.peer.open(1, EXEC)
        new = s.next_stream()
        writer = Background(lambda: new.write(pattern(3000)))
        assert receive(s.peer, 1, 1000) == pattern(1000)
        assert writer.blocked_for(0.2)
        s.peer.open(3, EXEC)
        opened = s.next_stream()
        opened.write(b"x" * 600)
        receive(s.peer, 3, 600)
        s.peer.send(Settings((Setting(SettingId.INITIAL_WINDOW_SIZE, 500),)))  # 500 - 600: below zero
        sync(s.peer)
        late = Background(lambda: opened.write(b"y" * 10))
        s.peer.send(WindowUpdate(3, 100))
        assert late.blocked_for(0.2) and s.peer.quiet_for(0.1), "sent on a window at zero"
        s.peer.send(WindowUpdate(3, 10), WindowUpdate(1, 2500))  # stream 1 also went 500 down: 0 - 500 + 2500
        frames = {s.peer.recv() for _ in range(2)}
        assert frames == {Data(3, b"y" * 10), Data(1, pattern(3000)[1000:])}
        writer.result()
        late.result()


def test_a_peer_that_ignores_windows_gets_everything_without_window_updates() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        body = pattern(1 << 20)
        writer = Background(lambda: stream.write(body))
        assert receive(s.peer, 1, len(body)) == body
        writer.result()


def test_a_client_that_stops_reading_blocks_the_writer_until_it_reads_again() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        body = pattern(8 << 20)
        writer = Background(lambda: stream.write(body))
        assert writer.blocked_for(0.5), "8 MiB went into the socket without the client reading"
        assert receive(s.peer, 1, len(body)) == body
        writer.result()


def test_window_updates_follow_what_the_application_reads() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Data(1, pattern(INITIAL_WINDOW)))
        assert bounded(lambda: stream.read(20_000)) == pattern(20_000)
        assert s.peer.quiet_for(0.1), "an update for less than half the window"
        assert bounded(lambda: stream.read(20_000)) == pattern(INITIAL_WINDOW)[20_000:40_000]
        assert {s.peer.recv(), s.peer.recv()} == {WindowUpdate(1, 40_000), WindowUpdate(0, 40_000)}
        s.peer.send(Data(1, b"", FLAG_FIN))
        assert bounded(lambda: stream.read()) == pattern(INITIAL_WINDOW)[40_000:]
        assert s.peer.quiet_for(0.1), "a stream update after its FIN, or a connection one for under half"
        s.peer.open(3, EXEC)
        other = s.next_stream()
        s.peer.send(Data(3, pattern(10_000)))
        assert bounded(other.read) == pattern(10_000)
        assert s.peer.recv() == WindowUpdate(0, INITIAL_WINDOW - 40_000 + 10_000), "the connection's count was lost"


def test_a_slow_reader_never_buffers_more_than_the_window() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        body = pattern(4 << 20)
        frames = [Data(1, body[i:i + 32_768]) for i in range(0, len(body), 32_768)]
        threading.Thread(target=s.peer.drain, daemon=True).start()  # our window updates
        sender = Background(lambda: s.peer.send(*frames))
        assert sender.blocked_for(0.5), "the client could send 4 MiB that nobody read"
        assert len(stream._buffer) <= INITIAL_WINDOW  # what pycrid holds for the stream
        got = b""
        while len(got) < len(body):
            got += bounded(stream.read)
            assert len(stream._buffer) <= INITIAL_WINDOW
        sender.result()
        assert got == body


def test_the_connection_buffers_no_more_than_its_limit_over_all_streams() -> None:
    with serve(limits=Limits(max_buffered=100_000)) as s:
        for stream_id in (1, 3, 5):
            s.peer.open(stream_id, EXEC)
        streams = [s.next_stream() for _ in range(3)]
        chunk = pattern(30_000)
        frames = [Data(stream_id, chunk) for _ in range(2) for stream_id in (1, 3, 5)]
        sender = Background(lambda: s.peer.send(*frames))
        deadline = time.monotonic() + WAIT
        while sum(len(stream._buffer) for stream in streams) < 90_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time to take more, if it would
        assert sum(len(stream._buffer) for stream in streams) == 90_000  # a fourth frame would pass 100_000
        assert all(bounded(stream.read) == chunk for stream in streams)
        sender.result()
        assert all(bounded(stream.read) == chunk for stream in streams)


def test_a_frame_larger_than_the_window_is_taken_in_pieces_as_there_is_room() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        body = pattern((1 << 24) - 1)  # the largest frame there is: spdystream sends a Write as one frame
        threading.Thread(target=s.peer.drain, daemon=True).start()  # our window updates
        sender = Background(lambda: s.peer.send(Data(1, body, FLAG_FIN)))
        assert sender.blocked_for(0.5), "the client could send 16 MiB that nobody read"
        assert len(stream._buffer) == INITIAL_WINDOW
        got = bytearray()
        while chunk := bounded(stream.read):
            got += chunk
            assert len(stream._buffer) <= INITIAL_WINDOW
        sender.result()
        assert got == body


def test_a_window_pushed_past_its_maximum_is_a_flow_control_error() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(WindowUpdate(1, 0x7FFFFFFF))
        assert s.peer.recv() == RstStream(1, RstStatus.FLOW_CONTROL_ERROR)
        assert stream.reset_error is not None and stream.reset_error.status == RstStatus.FLOW_CONTROL_ERROR
        s.peer.send(WindowUpdate(0, 0x7FFFFFFF))
        assert s.peer.recv() == GoAway(1, GoAwayStatus.PROTOCOL_ERROR)


def test_data_that_cannot_be_delivered_still_frees_the_connection_window() -> None:
    with serve() as s:
        s.peer.send(Data(7, pattern(100_000)))  # two pieces
        assert [s.peer.recv() for _ in range(3)] == [WindowUpdate(0, INITIAL_WINDOW),
                                                    WindowUpdate(0, 100_000 - INITIAL_WINDOW),
                                                    RstStream(7, RstStatus.INVALID_STREAM)]


def test_data_dropped_with_a_reset_frees_the_connection_window() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream = s.next_stream()
        s.peer.send(Data(1, pattern(INITIAL_WINDOW)))
        sync(s.peer)
        s.peer.send(Data(1, pattern(10_000)))
        time.sleep(0.1)  # the reader waits for room for it
        stream.reset()
        assert {s.peer.recv(), s.peer.recv()} == {RstStream(1, RstStatus.CANCEL),
                                                  WindowUpdate(0, INITIAL_WINDOW + 10_000)}


def test_reading_and_writing_one_stream_from_two_threads() -> None:
    with serve() as s:
        s.peer.open(1, EXEC)
        stream: Stream = s.next_stream()
        body = pattern(1 << 20)
        echoed = bytearray()

        def echo() -> None:
            while chunk := stream.read():
                stream.write(chunk)
            stream.close()

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        sender = Background(lambda: s.peer.send(*[Data(1, body[i:i + 10_000]) for i in range(0, len(body), 10_000)],
                                                Data(1, b"", FLAG_FIN)))
        while True:
            frame = s.peer.recv()
            if isinstance(frame, WindowUpdate):
                continue  # our reads free the window as they go
            assert isinstance(frame, Data)
            echoed += frame.data
            if frame.flags & FLAG_FIN:
                break
        sender.result()
        thread.join(5)
        assert bytes(echoed) == body
