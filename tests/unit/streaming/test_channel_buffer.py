from __future__ import annotations

import threading
import time

import pytest

from cri.streaming.channel_buffer import ChannelBuffer


def test_bytes_come_out_in_order_in_pieces_of_the_size_asked() -> None:
    buffer = ChannelBuffer(limit=100)
    assert buffer.put(b"hello ", 0) and buffer.put(b"world", 0)
    assert buffer.read(4) == b"hell"
    assert buffer.read(100) == b"o world"


def test_a_full_buffer_holds_the_writer_until_the_reader_makes_room() -> None:
    buffer = ChannelBuffer(limit=4)
    assert buffer.put(b"12345", 0)  # one message past the limit is taken whole
    assert buffer.put(b"6", 0.05) is False  # then no more until read
    assert buffer.buffered == 5
    done = threading.Event()
    writer = threading.Thread(target=lambda: done.set() if buffer.put(b"6") else None)
    writer.start()
    assert not done.wait(0.1)
    assert buffer.read(3) == b"123"
    assert done.wait(5)
    writer.join(5)
    assert buffer.read(10) == b"456"


def test_end_leaves_what_is_buffered_then_eof() -> None:
    buffer = ChannelBuffer(limit=10)
    buffer.put(b"tail")
    buffer.end()
    assert buffer.put(b"late", 0)  # taken and dropped: nothing comes after the end
    assert buffer.read(10) == b"tail"
    assert buffer.read(10) == b""
    assert buffer.read(10) == b""


def test_end_wakes_a_waiting_reader() -> None:
    buffer = ChannelBuffer(limit=10)
    threading.Timer(0.05, buffer.end).start()
    assert buffer.read(10, timeout=5) == b""


def test_discard_drops_everything_and_frees_a_waiting_writer() -> None:
    buffer = ChannelBuffer(limit=2)
    buffer.put(b"xx")
    threading.Timer(0.05, buffer.discard).start()
    started = time.monotonic()
    assert buffer.put(b"yy", timeout=5)
    assert time.monotonic() - started < 4
    assert buffer.buffered == 0 and buffer.read(10) == b""


def test_a_read_times_out_when_nothing_comes() -> None:
    with pytest.raises(TimeoutError):
        ChannelBuffer(limit=10).read(10, timeout=0.05)
