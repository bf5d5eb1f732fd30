from __future__ import annotations

import socket
import threading
import time

import pytest

from cri.streaming.socket_transport import SocketTransport, send_all


def test_send_all_fails_when_the_peer_takes_nothing() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            send_all(ours, b"x" * (16 << 20), timeout=0.2)
        assert time.monotonic() - started < 3


def test_send_all_waits_for_a_slow_peer_as_long_as_it_takes_some() -> None:
    ours, theirs = socket.socketpair()
    data = bytes(range(256)) * 8192  # 2 MiB: many times the socket buffers
    received = bytearray()

    def slow_reader() -> None:
        theirs.settimeout(5)
        while len(received) < len(data):
            received.extend(theirs.recv(16384))
            time.sleep(0.01)  # 2 MiB in 16 KiB steps: over a second in all

    with ours, theirs:
        reader = threading.Thread(target=slow_reader)
        reader.start()
        started = time.monotonic()
        send_all(ours, data, timeout=0.5)  # never half a second without progress
        assert time.monotonic() - started > 0.5
        reader.join(10)
    assert bytes(received) == data


def test_receive_returns_none_on_timeout_and_empty_at_the_end() -> None:
    ours, theirs = socket.socketpair()
    transport = SocketTransport(ours)
    with theirs:
        assert transport.receive(0.05) is None
        theirs.sendall(b"hi")
        assert transport.receive(1) == b"hi"
    assert transport.receive(1) == b""
    transport.close()


def test_shutdown_wakes_a_receive_and_is_harmless_after_close() -> None:
    ours, theirs = socket.socketpair()
    transport = SocketTransport(ours)
    with theirs:
        threading.Timer(0.05, transport.shutdown).start()
        assert transport.receive(5) == b""
        transport.close()
        transport.shutdown()
        assert ours.fileno() == -1
