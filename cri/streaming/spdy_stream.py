"""One SPDY stream as the application sees it (blocking read, write, close, reset), and the state
its connection shares with all its streams: one lock and condition guard both, and no socket I/O
happens while the lock is held.

Flow control (SPDY/3.1 section 2.6.8), receiving: the peer may send 64 KiB per stream (and per
connection) ahead of what the application has read; WINDOW_UPDATEs go out as the application reads.
A peer that ignores windows (moby/spdystream, under the kubelet, crictl and kubectl, neither sends
nor reads WINDOW_UPDATE) is held back by the connection's reader, which takes DATA off the socket a
window's worth at a time and waits for room before each piece, so TCP pushes back: a stream never
buffers more than its window, a connection never more than Limits.max_buffered plus a window.

Sending: the peer's windows are honoured once it shows it keeps them (a WINDOW_UPDATE, or SETTINGS
with an initial window size): writes then wait while a window is exhausted. Until then, waiting for
a WINDOW_UPDATE that spdystream never sends would stall every stream after 64 KiB, so writes go
straight to the blocking socket: a client that stops reading blocks the writer in the kernel's
send(), and nothing queues in pycrid either way.
"""
from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from typing import Protocol

from cri.streaming.spdy_errors import ConnectionClosed, RstStatus, StreamClosed, StreamReset
from cri.streaming.spdy_frames import FLAG_FIN, MAX_WINDOW, Data, Frame, Limits, RstStream, SynReply, WindowUpdate

INITIAL_WINDOW = 64 * 1024  # the draft's initial window, per stream and per connection
SEND_CHUNK = 32 * 1024  # largest DATA frame we send: what spdystream's own io.Copy sends


class _Reply(enum.Enum):
    PENDING = 1
    SENDING = 2  # writers wait: DATA must follow the SYN_REPLY on the wire
    SENT = 3


class FrameSender(Protocol):
    def send(self, frame: Frame) -> None:
        """Puts the frame on the wire, after any frame sent before; raises ConnectionClosed."""


class SessionState:
    """What the connection's streams share; every field is guarded by cond."""

    def __init__(self, limits: Limits) -> None:
        self.cond = threading.Condition()
        self.limits = limits
        self.streams: dict[int, Stream] = {}  # open: not both halves closed, not reset
        self.closed = False  # closing or closed: no more sending, waiters give up
        self.peer_keeps_windows = False
        self.peer_initial_window = INITIAL_WINDOW
        self.send_window = INITIAL_WINDOW
        self.buffered = 0  # received, not yet read, over all streams
        self.unacked = 0  # read (or dropped) since our last connection WINDOW_UPDATE

    def credit(self, consumed: int) -> list[Frame]:
        """Counts bytes the peer may send again, and returns the connection's WINDOW_UPDATE once
        half the window has been freed (fewer, larger updates)."""
        self.unacked += consumed
        if self.unacked < INITIAL_WINDOW // 2:
            return []
        update, self.unacked = WindowUpdate(0, self.unacked), 0
        return [update]


class Stream:
    """A stream the peer opened. Its connection hands it to the application with its headers."""

    def __init__(self, stream_id: int, headers: Mapping[str, str], session: SessionState, sender: FrameSender,
                 *, remote_fin: bool, unidirectional: bool) -> None:
        self.id = stream_id
        self.headers = headers  # names are lowercase on the wire: "streamtype", "port", "requestid"
        self._session = session
        self._sender = sender
        self._buffer = bytearray()
        self._remote_fin = remote_fin
        self._local_fin = unidirectional  # the peer's stream to send on, not ours
        self._reply = _Reply.PENDING
        self._reset: StreamReset | None = None
        self._send_window = session.peer_initial_window
        self._unacked = 0

    @property
    def reset_error(self) -> StreamReset | None:
        """The reset that ended the stream (by_peer tells whose), or None."""
        with self._session.cond:
            return self._reset

    def read(self, max_bytes: int = INITIAL_WINDOW) -> bytes:
        """Up to max_bytes, blocking until some arrive; b"" once the peer has sent FIN. Raises
        StreamReset when the stream is reset (what was buffered is dropped), and ConnectionClosed
        once the connection has ended and what had arrived has been read. The WINDOW_UPDATEs it
        sends wait, like any write, while the peer is not reading."""
        session = self._session
        with session.cond:
            while not self._buffer:
                if self._reset is not None:
                    raise self._reset
                if self._remote_fin:
                    return b""
                if session.closed:
                    raise ConnectionClosed(f"stream {self.id}: the connection is closed")
                session.cond.wait()
            data = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
            session.buffered -= len(data)
            session.cond.notify_all()  # the reader may be waiting for room
            updates = self._credit(len(data))
        for frame in updates:
            self._send_quietly(frame)
        return data

    def write(self, data: bytes) -> None:
        """Sends all of data, in frames of at most SEND_CHUNK bytes; blocks while the peer's windows
        (once it keeps them) or the socket are full. One writer per stream at a time. Raises
        StreamReset, StreamClosed after close(), or ConnectionClosed."""
        if data:
            self._send(memoryview(data), fin=False)

    def close(self) -> None:
        """Half-closes our side: an empty DATA frame with FIN. The peer may still send until it
        sends FIN too. Does nothing on a stream already closed on our side or reset, or once the
        connection is closed."""
        try:
            self._send(memoryview(b""), fin=True)
        except (StreamClosed, StreamReset, ConnectionClosed):
            pass

    def reset(self, status: RstStatus = RstStatus.CANCEL) -> None:
        """Ends both directions at once with RST_STREAM: pending reads and writes raise StreamReset,
        buffered data is dropped. Does nothing on a stream already ended."""
        with self._session.cond:
            if self._reset is not None or self._session.closed or (self._local_fin and self._remote_fin):
                return
            self._fail(StreamReset(self.id, status, by_peer=False))
        self._send_quietly(RstStream(self.id, status))

    def _send(self, view: memoryview, fin: bool) -> None:
        self._send_reply()
        session = self._session
        while True:
            with session.cond:
                while not self._may_send(len(view)):
                    session.cond.wait()
                size = min(len(view), SEND_CHUNK)
                if session.peer_keeps_windows:
                    size = min(size, self._send_window, session.send_window)
                self._send_window -= size  # kept even for a peer that ignores windows, in case it starts
                session.send_window -= size
                last = size == len(view)
                if last and fin:
                    self._local_fin = True
                    self._forget_if_done()
            self._sender.send(Data(self.id, bytes(view[:size]), FLAG_FIN if last and fin else 0))
            if last:
                return
            view = view[size:]

    def _may_send(self, size: int) -> bool:
        """Under cond: whether a frame may go now; raises when none ever may."""
        if self._reset is not None:
            raise self._reset
        if self._session.closed:
            raise ConnectionClosed(f"stream {self.id}: the connection is closed")
        if self._local_fin:
            raise StreamClosed(f"stream {self.id} is closed for sending")
        if self._reply is not _Reply.SENT:
            return False  # the peer drops DATA that comes before our SYN_REPLY
        windows_open = self._send_window > 0 and self._session.send_window > 0
        return size == 0 or not self._session.peer_keeps_windows or windows_open

    def _credit(self, consumed: int) -> list[Frame]:
        self._unacked += consumed
        updates = []
        if not self._remote_fin and self._unacked >= INITIAL_WINDOW // 2:
            updates.append(WindowUpdate(self.id, self._unacked))
            self._unacked = 0
        return updates + self._session.credit(consumed)

    def _send_reply(self) -> None:
        """Accepts the stream with SYN_REPLY unless that is done or under way: the connection does
        once its handler accepts the stream, or the handler's own first write or close does."""
        with self._session.cond:
            if self._reply is not _Reply.PENDING or self._reset is not None:
                return
            self._reply = _Reply.SENDING
        try:
            self._sender.send(SynReply(self.id, {}))
        finally:
            with self._session.cond:
                self._reply = _Reply.SENT
                self._session.cond.notify_all()

    def _send_quietly(self, frame: Frame) -> None:
        try:
            self._sender.send(frame)
        except ConnectionClosed:
            pass  # window updates and resets mean nothing once the connection is gone

    # The connection calls what follows with cond held, from its reader thread.

    def _has_room(self, size: int) -> bool:
        """Whether a DATA frame of size bytes fits what this stream and the connection buffer."""
        session = self._session
        stream_ok = not self._buffer or len(self._buffer) + size <= INITIAL_WINDOW
        session_ok = session.buffered == 0 or session.buffered + size <= session.limits.max_buffered
        return stream_ok and session_ok

    def _deliver(self, data: bytes, fin: bool) -> RstStatus | None:
        """Buffers DATA for read(); returns the status to reset the stream with if it may not come."""
        if self._remote_fin:
            self._fail(StreamReset(self.id, RstStatus.STREAM_ALREADY_CLOSED, by_peer=False))
            return RstStatus.STREAM_ALREADY_CLOSED
        self._buffer += data
        self._session.buffered += len(data)
        if fin:
            self._peer_fin()
        self._session.cond.notify_all()
        return None

    def _peer_fin(self) -> None:
        self._remote_fin = True
        self._forget_if_done()
        self._session.cond.notify_all()

    def _peer_reset(self, status: int) -> None:
        self._fail(StreamReset(self.id, status, by_peer=True))

    def _window_update(self, delta: int) -> bool:
        """Opens the send window; False when that would overflow it (a FLOW_CONTROL_ERROR)."""
        if self._send_window + delta > MAX_WINDOW:
            return False
        self._send_window += delta
        self._session.cond.notify_all()
        return True

    def _adjust_window(self, delta: int) -> None:
        """The peer changed its initial window: applies to the windows of streams already open."""
        self._send_window += delta
        self._session.cond.notify_all()

    def _fail(self, error: StreamReset) -> None:
        self._reset = error
        self._session.buffered -= len(self._buffer)
        self._session.unacked += len(self._buffer)  # the peer counted it against the connection window
        self._buffer.clear()
        self._forget_if_done()
        self._session.cond.notify_all()

    def _forget_if_done(self) -> None:
        if self._reset is not None or (self._local_fin and self._remote_fin):
            self._session.streams.pop(self.id, None)
