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
    Frame,
    FrameHeader,
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
    parse_frame_header,
)
from cri.streaming.spdy_headers import HeaderInflater
from cri.streaming.spdy_socket import FramedSocket
from cri.streaming.spdy_stream import INITIAL_WINDOW, SessionState, Stream

log = logging.getLogger("pycrid.spdy")

DEFAULT_LIMITS = Limits()

StreamHandler = Callable[[Stream], bool]
"""Called on the reader thread with each new stream; True accepts it (SYN_REPLY), False refuses it
(RST_STREAM REFUSED_STREAM). It may write to the stream or close it (which accepts it at once),
but must not block: no frame is read until it returns."""


class Connection:
    def __init__(self, sock: socket.socket, on_stream: StreamHandler, *, limits: Limits = DEFAULT_LIMITS,
                 preread: bytes = b"", linger: float = 1.0) -> None:
        """sock: connected, made blocking here. preread: bytes already read from it past the HTTP
        upgrade. linger: how long close() lets the peer read our last frames and close first."""
        self._socket = FramedSocket(sock, preread)
        self._on_stream = on_stream
        self._limits = limits
        self._linger = linger
        self._session = SessionState(limits)
        self._inflater = HeaderInflater(limits.max_header_block, limits.max_headers)
        self._last_stream_id = 0  # the peer's latest SYN_STREAM
        self._last_accepted = 0  # the latest we replied to: GOAWAY's last-good-stream-id
        self._goaway: GoAway | None = None
        self._last_read_at = time.monotonic()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._run, name="spdy-reader", daemon=True)

    def start(self) -> None:
        self._reader.start()

    @property
    def last_frame_at(self) -> float:
        """time.monotonic() of the last frame read or written: for the caller's idle timeout."""
        return max(self._last_read_at, self._socket.last_sent_at)

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
            self._socket.shutdown(socket.SHUT_RD)  # the reader reads EOF
        self._done.wait()

    def send(self, frame: Frame) -> None:
        """Puts one frame on the wire (streams send through here); raises ConnectionClosed."""
        if self._session.closed:
            raise ConnectionClosed("the connection is closed")
        self._socket.send(frame)

    def _run(self) -> None:
        try:
            while True:
                header = parse_frame_header(self._socket.read_exact(FRAME_HEADER_SIZE), self._limits)
                self._last_read_at = time.monotonic()
                if not header.control:
                    self._receive_data(header)
                    continue
                frame = decode_frame(header, self._socket.read_exact(header.length), self._inflater)
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

    def _dispatch(self, frame: Frame) -> None:
        match frame:
            case SynStream():
                self._open_stream(frame)
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
                self._socket.send(frame)
            case GoAway():
                self._goaway = frame
                with self._session.cond:
                    idle = not self._session.streams
                if idle:
                    self._begin_close(GoAwayStatus.OK)
            case SynReply(stream_id):  # we open no streams
                self._socket.send(RstStream(stream_id, RstStatus.INVALID_STREAM))

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
            self._socket.send(RstStream(frame.stream_id, RstStatus.REFUSED_STREAM))
            return
        stream._send_reply()
        self._last_accepted = frame.stream_id

    def _receive_data(self, header: FrameHeader) -> None:
        """Takes a DATA frame's payload off the socket a window's worth at a time, each piece once
        the stream and the connection have room for it (spdystream sends a whole Write as one frame,
        up to 16 MiB), and answers with RST_STREAM if the stream may not have it."""
        if header.stream_id == 0:
            raise ProtocolError("DATA frame on stream 0")
        remaining, dropping, status = header.length, False, None
        fin = bool(header.flags & FLAG_FIN)
        while True:
            piece = self._socket.read_exact(min(remaining, INITIAL_WINDOW))
            remaining -= len(piece)
            if not dropping:
                dropping, status = self._deliver(header.stream_id, piece, fin and not remaining)
            if dropping:
                self._credit(len(piece))
            if not remaining:
                break
        if status is not None:
            self._socket.send(RstStream(header.stream_id, status))

    def _deliver(self, stream_id: int, piece: bytes, fin: bool) -> tuple[bool, RstStatus | None]:
        """Whether the piece was dropped, and the status to reset its stream with, if any."""
        session = self._session
        with session.cond:
            stream = session.streams.get(stream_id)
            if stream is None:
                return True, RstStatus.INVALID_STREAM
            while not session.closed and stream.id in session.streams and not stream._has_room(len(piece)):
                session.cond.wait()  # TCP pushes back on the peer meanwhile
            if session.closed or stream.id not in session.streams:
                return True, None  # closing, or a stream we reset meanwhile (its RST_STREAM is sent)
            status = stream._deliver(piece, fin)
            return status is not None, status

    def _credit(self, size: int) -> None:
        """Dropped data frees the connection window at once (the peer counted it too); what is
        delivered frees it as the application reads."""
        with self._session.cond:
            updates = [] if self._session.closed else self._session.credit(size)
        for update in updates:
            self._socket.send(update)

    def _receive_headers(self, frame: Headers) -> None:
        with self._session.cond:
            stream = self._session.streams.get(frame.stream_id)
            if stream is not None:
                if frame.flags & FLAG_FIN:
                    stream._peer_fin()
                return  # no use for the headers themselves (they were decoded, as they must be)
        self._socket.send(RstStream(frame.stream_id, RstStatus.INVALID_STREAM))

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
        self._socket.send(RstStream(frame.stream_id, RstStatus.FLOW_CONTROL_ERROR))

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
        self._socket.send_if_room(GoAway(self._last_accepted, status), wait=self._linger)
        self._socket.shutdown(socket.SHUT_WR)

    def _end(self) -> None:
        """The reader's last act: fails what waits, then closes the socket."""
        with self._session.cond:
            self._session.closed = True
            self._session.cond.notify_all()
        self._socket.close()
        self._done.set()
