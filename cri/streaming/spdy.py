"""The server side of a SPDY/3.1 connection, as Kubernetes' streaming clients use it (exec, attach,
port-forward over an upgraded HTTP connection): the client opens streams, each carrying headers
such as streamtype (and port and requestid for port-forward); the application accepts a stream,
which we answer with SYN_REPLY (spdystream's clients wait for it), and reads and writes it.

Blocking I/O: one reader thread, owned by the connection, takes frames off the socket in order and
dispatches them; writes come from any thread, one frame at a time under a lock, so a frame's bytes
(and the header compression context) are never interleaved. See spdy_stream for flow control.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from cri.streaming.spdy_errors import ConnectionClosed, GoAwayStatus, ProtocolError, RstStatus, StreamReset
from cri.streaming.spdy_frames import (
    FLAG_FIN,
    FLAG_UNIDIRECTIONAL,
    FRAME_HEADER_SIZE,
    MAX_WINDOW,
    Data,
    Frame,
    GoAway,
    Headers,
    Limits,
    Ping,
    RstStream,
    SettingId,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
    decode_frame,
    encode_frame,
    parse_frame_header,
)
from cri.streaming.spdy_headers import HeaderDeflater, HeaderInflater
from cri.streaming.spdy_stream import SessionState, Stream

log = logging.getLogger("pycrid.spdy")

DEFAULT_LIMITS = Limits()

StreamHandler = Callable[[Stream], bool]
"""Called on the reader thread with each new stream; True accepts it (SYN_REPLY), False refuses it
(RST_STREAM REFUSED_STREAM). It must not block: no frame is read until it returns."""


class Connection:
    def __init__(self, sock: socket.socket, on_stream: StreamHandler, *, limits: Limits = DEFAULT_LIMITS,
                 preread: bytes = b"", linger: float = 1.0) -> None:
        """sock: connected, made blocking here. preread: bytes already read from it past the HTTP
        upgrade. linger: how long close() lets the peer read our last frames and close first."""
        sock.settimeout(None)
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._preread = preread
        self._on_stream = on_stream
        self._limits = limits
        self._linger = linger
        self._session = SessionState(limits)
        self._deflater = HeaderDeflater()
        self._inflater = HeaderInflater(limits.max_header_block, limits.max_headers)
        self._write_lock = threading.Lock()
        self._teardown_lock = threading.Lock()  # the socket is shut down only while it is open
        self._sock_closed = False
        self._last_stream_id = 0  # the peer's latest SYN_STREAM
        self._last_accepted = 0  # the latest we replied to: GOAWAY's last-good-stream-id
        self._goaway: GoAway | None = None
        self._last_frame_at = time.monotonic()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._run, name="spdy-reader", daemon=True)

    def start(self) -> None:
        self._reader.start()

    @property
    def last_frame_at(self) -> float:
        """time.monotonic() of the last frame read or written: for the caller's idle timeout."""
        return self._last_frame_at

    @property
    def goaway_received(self) -> GoAway | None:
        """The peer's GOAWAY: it opens no more streams; those open go on until they end."""
        return self._goaway

    @property
    def closed(self) -> bool:
        """Closing or closed: nothing more is sent."""
        with self._session.cond:
            return self._session.closed

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Waits until the reader has ended and the socket is closed; False on timeout."""
        return self._done.wait(timeout)

    def close(self, status: GoAwayStatus = GoAwayStatus.OK) -> None:
        """Sends GOAWAY, fails pending and later reads (once drained) and writes with
        ConnectionClosed, ends the reader thread and closes the socket. Waits up to linger for the
        peer to close its side first, so that what we sent is not lost to a TCP reset."""
        self._begin_close(status)
        if threading.current_thread() is self._reader:
            return  # the reader ends the connection once it returns to its loop
        if not self._reader.is_alive() and not self._done.is_set():
            self._end()  # never started
            return
        if not self._done.wait(self._linger):
            self._shutdown(socket.SHUT_RD)
        self._done.wait()

    def send(self, frame: Frame) -> None:
        """Puts one frame on the wire (streams send through here); raises ConnectionClosed."""
        if self._session.closed:
            raise ConnectionClosed("the connection is closed")
        self._write(frame)

    def _write(self, frame: Frame) -> None:
        with self._write_lock:
            if self._sock_closed:
                raise ConnectionClosed("the connection is closed")
            data = encode_frame(frame, self._deflater)
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise ConnectionClosed(f"sending failed: {e}") from e
            self._last_frame_at = time.monotonic()

    def _run(self) -> None:
        try:
            while True:
                frame = self._read_frame()
                self._last_frame_at = time.monotonic()
                if frame is not None and not self._session.closed:
                    self._dispatch(frame)
        except ProtocolError as e:
            if not self._session.closed:
                log.warning("SPDY peer broke the protocol, closing the connection: %s", e)
                self._begin_close(GoAwayStatus.PROTOCOL_ERROR)
        except (EOFError, OSError, ConnectionClosed):
            pass  # the peer went away, or close() shut the socket down
        except Exception:
            log.exception("SPDY connection failed")
            self._begin_close(GoAwayStatus.INTERNAL_ERROR)
        finally:
            self._end()

    def _read_frame(self) -> Frame | None:
        header = parse_frame_header(self._read_exact(FRAME_HEADER_SIZE), self._limits)
        return decode_frame(header, self._read_exact(header.length), self._inflater)

    def _read_exact(self, size: int) -> bytes:
        head, self._preread = self._preread[:size], self._preread[size:]
        data = head + self._rfile.read(size - len(head)) if size > len(head) else head
        if len(data) < size:
            raise EOFError("the peer closed the connection")
        return data

    def _dispatch(self, frame: Frame) -> None:
        match frame:
            case SynStream():
                self._open_stream(frame)
            case Data():
                self._receive_data(frame)
            case Headers():
                self._receive_headers(frame)
            case RstStream(stream_id, status):
                with self._session.cond:
                    stream = self._session.streams.get(stream_id)
                    if stream is not None:  # never answer a reset with a reset
                        stream._peer_reset(status)
            case WindowUpdate():
                self._open_window(frame)
            case Settings():
                self._apply_settings(frame)
            case Ping(ping_id) if ping_id % 2 == 1:  # the client's; an even one would be ours, and we send none
                self._write(frame)
            case GoAway():
                self._goaway = frame
                with self._session.cond:
                    idle = not self._session.streams
                if idle:
                    self._begin_close(GoAwayStatus.OK)
            case SynReply(stream_id):  # we open no streams
                self._write(RstStream(stream_id, RstStatus.INVALID_STREAM))

    def _open_stream(self, frame: SynStream) -> None:
        if frame.stream_id % 2 == 0 or frame.stream_id <= self._last_stream_id:
            raise ProtocolError(f"client stream id {frame.stream_id} is even or not above {self._last_stream_id}")
        self._last_stream_id = frame.stream_id
        session = self._session
        with session.cond:
            stream: Stream | None = None
            if self._goaway is None and len(session.streams) < self._limits.max_streams:
                stream = Stream(frame.stream_id, frame.headers, session, self, remote_fin=bool(frame.flags & FLAG_FIN),
                                unidirectional=bool(frame.flags & FLAG_UNIDIRECTIONAL))
                session.streams[stream.id] = stream
        accepted = False
        if stream is not None:
            try:
                accepted = self._on_stream(stream)
            except Exception:
                log.exception("SPDY stream handler failed on stream %d %s", stream.id, dict(stream.headers))
        if stream is None or not accepted:
            if stream is not None:
                with session.cond:
                    stream._fail(StreamReset(stream.id, RstStatus.REFUSED_STREAM, by_peer=False))
            self._write(RstStream(frame.stream_id, RstStatus.REFUSED_STREAM))
            return
        self._write(SynReply(frame.stream_id, {}))
        with session.cond:
            self._last_accepted = frame.stream_id
            stream._accept()

    def _receive_data(self, frame: Data) -> None:
        session = self._session
        status: RstStatus | None = RstStatus.INVALID_STREAM
        with session.cond:
            stream = session.streams.get(frame.stream_id)
            delivered = False
            if stream is not None:
                while not session.closed and stream.id in session.streams and not stream._has_room(len(frame.data)):
                    session.cond.wait()  # TCP pushes back on the peer meanwhile
                if session.closed:
                    return
                status = None  # a stream we reset while we waited: its RST_STREAM is sent already
                if stream.id in session.streams:
                    status = stream._deliver(frame.data, bool(frame.flags & FLAG_FIN))
                    delivered = status is None
            # the peer counted undelivered data against the connection window too
            updates = [] if delivered else session.credit(len(frame.data))
        for update in updates:
            self._write(update)
        if status is not None:
            self._write(RstStream(frame.stream_id, status))

    def _receive_headers(self, frame: Headers) -> None:
        with self._session.cond:
            stream = self._session.streams.get(frame.stream_id)
            if stream is not None:
                if frame.flags & FLAG_FIN:
                    stream._peer_fin()
                return  # no use for the headers themselves (they were decoded, as they must be)
        self._write(RstStream(frame.stream_id, RstStatus.INVALID_STREAM))

    def _open_window(self, frame: WindowUpdate) -> None:
        session = self._session
        with session.cond:
            session.peer_keeps_windows = True
            if frame.stream_id == 0:
                if session.send_window + frame.delta > MAX_WINDOW:
                    raise ProtocolError("WINDOW_UPDATE overflows the connection window")
                session.send_window += frame.delta
                session.cond.notify_all()
                return
            stream = session.streams.get(frame.stream_id)
            if stream is None or stream._window_update(frame.delta):
                return  # a stream that just ended, or all well
            stream._fail(StreamReset(stream.id, RstStatus.FLOW_CONTROL_ERROR, by_peer=False))
        self._write(RstStream(frame.stream_id, RstStatus.FLOW_CONTROL_ERROR))

    def _apply_settings(self, frame: Settings) -> None:
        for setting in frame.entries:
            if setting.id != SettingId.INITIAL_WINDOW_SIZE:
                continue  # the others bound what we would open or send, and we open nothing
            if setting.value > MAX_WINDOW:
                raise ProtocolError(f"initial window of {setting.value} bytes")
            session = self._session
            with session.cond:
                delta = setting.value - session.peer_initial_window
                session.peer_initial_window = setting.value
                session.peer_keeps_windows = True
                for stream in session.streams.values():
                    stream._adjust_window(delta)
            return  # the draft: only the first value for an id counts

    def _begin_close(self, status: GoAwayStatus) -> None:
        """Marks the connection closing (waiters give up), sends GOAWAY if the socket takes it
        without waiting, and shuts our sending side: the peer reads EOF after our last frame."""
        with self._session.cond:
            if self._session.closed:
                return
            self._session.closed = True
            self._session.cond.notify_all()
        goaway = encode_frame(GoAway(self._last_accepted, status), self._deflater)
        if self._write_lock.acquire(timeout=self._linger):  # a writer stuck on a full socket holds it
            try:
                if not self._sock_closed:
                    self._sock.send(goaway, socket.MSG_DONTWAIT)
            except OSError:
                pass  # a peer that does not read would not read the GOAWAY either
            finally:
                self._write_lock.release()
        self._shutdown(socket.SHUT_WR)

    def _shutdown(self, how: int) -> None:
        with self._teardown_lock:
            if not self._sock_closed:
                try:
                    self._sock.shutdown(how)
                except OSError:
                    pass  # already disconnected

    def _end(self) -> None:
        """The reader's last act: fails what waits, then closes the socket, once no writer is
        inside send() (shutting it down first wakes any that is blocked there)."""
        with self._session.cond:
            self._session.closed = True
            self._session.cond.notify_all()
        self._shutdown(socket.SHUT_RDWR)
        with self._write_lock, self._teardown_lock:
            self._sock_closed = True
            self._rfile.close()
            self._sock.close()
        self._done.set()
