"""A SPDY client made of the framing functions, driving a real Connection over a socketpair, and a
way to run blocking calls with a bound on their time."""
from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from cri.streaming.spdy import DEFAULT_LIMITS, Connection
from cri.streaming.spdy_frames import (
    FRAME_HEADER_SIZE,
    Frame,
    Limits,
    SynReply,
    SynStream,
    decode_frame,
    encode_frame,
    parse_frame_header,
)
from cri.streaming.spdy_headers import HeaderDeflater, HeaderInflater
from cri.streaming.spdy_stream import Stream

T = TypeVar("T")
WAIT = 5.0  # no single step of a test waits longer than this
PEER_LIMITS = Limits(max_control_payload=1 << 24)


class Peer:
    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(WAIT)
        self.sock = sock
        self._deflater = HeaderDeflater()
        self._inflater = HeaderInflater(PEER_LIMITS.max_header_block, PEER_LIMITS.max_headers)

    def send(self, *frames: Frame) -> None:
        self.sock.sendall(b"".join(encode_frame(frame, self._deflater) for frame in frames))

    def recv(self) -> Frame:
        """The next frame; fails after WAIT seconds, or if the connection ends first."""
        while True:
            header = parse_frame_header(self._read(FRAME_HEADER_SIZE), PEER_LIMITS)
            frame = decode_frame(header, self._read(header.length), self._inflater)
            if frame is not None:
                return frame

    def quiet_for(self, seconds: float) -> bool:
        """True if nothing at all arrives for that long."""
        self.sock.settimeout(seconds)
        try:
            return not self.sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(WAIT)

    def drain(self) -> None:
        """Reads and drops frames until the connection ends, as a client's reader loop does."""
        try:
            while True:
                self.recv()
        except (EOFError, OSError):
            pass

    def at_eof(self) -> bool:
        return self.sock.recv(1) == b""

    def open(self, stream_id: int, headers: dict[str, str], flags: int = 0) -> None:
        self.send(SynStream(stream_id, headers, flags))
        assert self.recv() == SynReply(stream_id, {})

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError(f"connection ended with {len(data)} of {size} bytes read")
            data += chunk
        return data


@dataclass
class Served:
    conn: Connection
    peer: Peer
    streams: queue.Queue[Stream]

    def next_stream(self) -> Stream:
        return self.streams.get(timeout=WAIT)


@contextlib.contextmanager
def serve(accept: Callable[[Stream], bool] = lambda stream: True, *, limits: Limits = DEFAULT_LIMITS,
          preread: bytes = b"", linger: float = 0.2) -> Iterator[Served]:
    """A started Connection on one end of a socketpair and a Peer on the other; ends both."""
    ours, theirs = socket.socketpair()
    streams: queue.Queue[Stream] = queue.Queue()

    def on_stream(stream: Stream) -> bool:
        accepted = accept(stream)
        if accepted:
            streams.put(stream)
        return accepted

    conn = Connection(ours, on_stream, limits=limits, preread=preread, linger=linger)
    conn.start()
    try:
        yield Served(conn, Peer(theirs), streams)
    finally:
        theirs.close()
        conn.close()
        assert conn.wait_closed(WAIT), "the connection's reader did not end"


class Background(Generic[T]):
    """Runs a blocking call on its own thread so that a test can see it block, and bounds it."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._result: queue.Queue[tuple[bool, T | BaseException]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self._result.put((True, call()))
        except BaseException as e:  # noqa: B036 - handed to the test thread
            self._result.put((False, e))

    def blocked_for(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return self._thread.is_alive()

    def result(self) -> T:
        ok, value = self._result.get(timeout=WAIT)
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]  # ok: call() returned it

    def error(self) -> BaseException:
        ok, value = self._result.get(timeout=WAIT)
        assert not ok and isinstance(value, BaseException), f"returned {value!r} instead of raising"
        return value


def bounded(call: Callable[[], T]) -> T:
    """call(), failing the test instead of hanging if it does not return within WAIT."""
    return Background(call).result()
