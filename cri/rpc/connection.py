"""One client connection: HTTP/2 (frames.py, fields.py) read by one thread of its own; the calls
run in the server's pool and send their replies through send_headers/send_message/finish.

Locks: ``_lock`` guards the connection's state, its streams and the bytes queued to send (never
held across a blocking call); ``_send_lock`` orders the writes, taken before ``_lock``. A client
that stops reading blocks a write for at most SEND_TIMEOUT seconds, then loses the connection.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cri.rpc import fields, frames, wire
from cri.rpc.context import Call
from cri.rpc.frames import END_HEADERS, END_STREAM, ErrorCode, Frame, Kind, ProtocolViolation, Setting
from cri.rpc.status import StatusCode, trailers

log = logging.getLogger("pycrid.rpc")

RESPONSE_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
RESPONSE_HEAD = fields.encode(RESPONSE_HEADERS)
MAX_CONCURRENT_STREAMS = 256  # a client past it waits for a stream to end (grpc-go queues)
MAX_HEADER_LIST_SIZE = 16 * 1024  # as grpc's servers
MAX_HEADER_BLOCK = 64 * 1024  # compressed, over HEADERS and its CONTINUATIONs: a flood ends here
WINDOW = 1 << 20  # what each stream and the connection may send ahead of our reading
BUFFERED_PER_CONNECTION = 64 << 20  # request bytes held at once over all of a connection's streams
SEND_TIMEOUT = 30.0
STALL_SECONDS = 60.0  # a reply the client grants no window for this long is abandoned
RECEIVE_BYTES = 1 << 16
OUR_SETTINGS = {Setting.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                Setting.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
                Setting.INITIAL_WINDOW_SIZE: WINDOW}

Start = Callable[["Connection", int, wire.RequestHead, bytes, Call], None]


class StreamGone(Exception):
    """The call's stream was reset, or its connection closed: nothing more can be sent."""


@dataclass
class _Stream:
    call: Call
    send_window: int
    head: wire.RequestHead | None = None
    refused: wire.WireError | None = None
    body: bytearray = field(default_factory=bytearray)
    unacknowledged: int = 0  # bytes read that no WINDOW_UPDATE has given back yet
    request_ended: bool = False


@dataclass
class _HeaderBlock:  # a HEADERS frame whose CONTINUATIONs are still coming
    stream_id: int
    flags: int
    block: bytearray


class Connection:
    def __init__(self, sock: socket.socket, start: Start, max_receive: int,
                 on_closed: Callable[[Connection], None]) -> None:
        self._sock = sock
        self._start = start
        self._max_receive = max_receive
        self._on_closed = on_closed
        self._reader = frames.FrameReader()
        self._decoder = fields.FieldDecoder()
        self._lock = threading.Lock()
        self._window_moved = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._out = bytearray()  # frames made, not yet written
        self._streams: dict[int, _Stream] = {}
        # Streams that hold one of MAX_CONCURRENT_STREAMS: from their HEADERS until the call's task
        # is done (task_done), even if the client reset them, so resets cannot queue calls without end.
        self._slots: set[int] = set()
        self._last_stream = 0
        self._continuing: _HeaderBlock | None = None
        self._reset: list[Call] = []  # calls the client reset, ended once the lock is released
        self._buffered = 0
        # The client's limits on what we send.
        self._send_window = frames.DEFAULT_WINDOW
        self._stream_window = frames.DEFAULT_WINDOW
        self._max_frame = frames.DEFAULT_FRAME_SIZE
        self._unacknowledged = 0  # bytes read that no connection WINDOW_UPDATE has given back yet
        self._refusing = False
        self._started = False
        self._closed = False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(SEND_TIMEOUT), 0))

    # -- the reading thread -------------------------------------------------------------------

    def run(self) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                self._started = True
                self._out += frames.settings(OUR_SETTINGS)
                self._out += frames.window_update(0, WINDOW - frames.DEFAULT_WINDOW)
            self._flush()
            while not self._closed:
                data = self._sock.recv(RECEIVE_BYTES)
                if not data:
                    break
                ready = []
                with self._lock:
                    try:
                        for frame in self._reader.feed(data):
                            if (started := self._on(frame)) is not None:
                                ready.append(started)
                    except ProtocolViolation as e:
                        log.info("closing a CRI connection: HTTP/2 protocol error: %s", e)
                        self._out += frames.goaway(self._last_stream, e.code, str(e))
                        self._closed = True
                        ready = []  # the calls before the violation have nobody to answer to now
                    reset, self._reset = self._reset, []
                self._flush()
                for call in reset:  # outside the lock: a callback may wake a thread that sends
                    call.end()
                for stream_id, stream, payload in ready:
                    assert stream.head is not None
                    self._start(self, stream_id, stream.head, payload, stream.call)
        except OSError:
            pass
        except Exception:  # noqa: BLE001 - a bug here costs this connection, not the server
            log.exception("closing a CRI connection after an unexpected error")
        finally:
            self._close()

    def _on(self, frame: Frame) -> tuple[int, _Stream, bytes] | None:
        """Applies one frame (under the lock); a call whose request is whole comes back to start."""
        kind, stream_id = frame.kind, frame.stream_id
        if self._continuing is not None and (kind != Kind.CONTINUATION or stream_id != self._continuing.stream_id):
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"a {_name(kind)} frame inside a header block")
        if kind == Kind.DATA:
            return self._on_data(frame)
        if kind in (Kind.HEADERS, Kind.CONTINUATION):
            return self._on_headers(frame)
        if kind == Kind.WINDOW_UPDATE:
            self._on_window_update(stream_id, frames.number(frame.payload, Kind.WINDOW_UPDATE))
        elif kind == Kind.SETTINGS:
            self._on_settings(frame)
        elif kind == Kind.PING:
            if stream_id or len(frame.payload) != 8:
                raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "a PING not on stream 0 or not of 8 bytes")
            if not frame.flags & frames.ACK:
                self._out += frames.build(Kind.PING, frames.ACK, 0, frame.payload)
        elif kind == Kind.RST_STREAM:
            frames.number(frame.payload, Kind.RST_STREAM)
            if stream_id == 0:
                raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
            self._idle_check(stream_id, "RST_STREAM")
            self._end_stream(stream_id)
        elif kind == Kind.PUSH_PROMISE:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "a client sent PUSH_PROMISE")
        elif kind in (Kind.PRIORITY, Kind.GOAWAY) and (stream_id == 0) != (kind == Kind.GOAWAY):
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"a {_name(kind)} frame on stream {stream_id}")
        # PRIORITY is advice; a client's GOAWAY is followed by its closing the socket; unknown
        # frame types are ignored (RFC 9113 §4.1).
        return None

    def _on_headers(self, frame: Frame) -> tuple[int, _Stream, bytes] | None:
        if frame.kind == Kind.HEADERS:
            if frame.stream_id == 0:
                raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
            self._continuing = _HeaderBlock(frame.stream_id, frame.flags, bytearray(frames.unpadded(frame)))
        elif self._continuing is None:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        else:
            self._continuing.block += frame.payload
        if len(self._continuing.block) > MAX_HEADER_BLOCK:
            raise ProtocolViolation(ErrorCode.ENHANCE_YOUR_CALM, f"a header block past {MAX_HEADER_BLOCK} bytes")
        if not frame.flags & END_HEADERS:
            return None
        whole, self._continuing = self._continuing, None
        headers = self._decoder.decode(bytes(whole.block), MAX_HEADER_LIST_SIZE)
        stream_id, ends = whole.stream_id, bool(whole.flags & END_STREAM)
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.request_ended:  # the request's trailers
            if not ends:
                self._refuse(stream_id, ErrorCode.PROTOCOL_ERROR)
                return None
            return self._request_ended(stream_id)
        if stream_id % 2 == 0:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"a client opened even stream {stream_id}")
        if stream_id <= self._last_stream:
            self._refuse(stream_id, ErrorCode.STREAM_CLOSED)
            return None
        self._last_stream = stream_id
        if self._refusing or len(self._slots) >= MAX_CONCURRENT_STREAMS:
            # The server stops, or the client is past the streams it may open: it may retry.
            self._out += frames.rst_stream(stream_id, ErrorCode.REFUSED_STREAM)
            return None
        head, refused, deadline = None, None, None
        try:
            if headers is None:
                raise wire.WireError(StatusCode.RESOURCE_EXHAUSTED,
                                     f"request headers past {MAX_HEADER_LIST_SIZE} bytes")
            head = wire.read_head(headers)
        except wire.WireError as e:
            refused = e
        else:
            deadline = None if head.timeout is None else time.monotonic() + head.timeout
        self._streams[stream_id] = _Stream(Call(deadline), self._stream_window, head, refused)
        self._slots.add(stream_id)
        return self._request_ended(stream_id) if ends else None

    def _on_data(self, frame: Frame) -> tuple[int, _Stream, bytes] | None:
        stream_id, size = frame.stream_id, len(frame.payload)
        if stream_id == 0:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        # Windows are given back as frames are read, whatever their stream: the bytes requests may
        # hold are bounded by max_receive and BUFFERED_PER_CONNECTION, not by flow control.
        self._unacknowledged += size
        if self._unacknowledged >= WINDOW // 2:
            self._out += frames.window_update(0, self._unacknowledged)
            self._unacknowledged = 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.request_ended:
            self._idle_check(stream_id, "DATA")
            if stream is not None:
                self._refuse(stream_id, ErrorCode.STREAM_CLOSED)
            return None  # a stream already answered or reset: its bytes are not wanted
        ends = frame.flags & END_STREAM
        if not ends:
            stream.unacknowledged += size
            if stream.unacknowledged >= WINDOW // 2:
                self._out += frames.window_update(stream_id, stream.unacknowledged)
                stream.unacknowledged = 0
        self._received_data(stream_id, frames.unpadded(frame))
        return self._request_ended(stream_id) if ends else None

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        if stream_id == 0:
            self._send_window += increment
            if not increment or self._send_window > frames.MAX_WINDOW:
                raise ProtocolViolation(ErrorCode.FLOW_CONTROL_ERROR if increment else ErrorCode.PROTOCOL_ERROR,
                                        f"the connection's window moved by {increment} to {self._send_window}")
        else:
            self._idle_check(stream_id, "WINDOW_UPDATE")
            stream = self._streams.get(stream_id)
            if stream is None:
                return
            stream.send_window += increment
            if not increment or stream.send_window > frames.MAX_WINDOW:
                self._refuse(stream_id, ErrorCode.FLOW_CONTROL_ERROR if increment else ErrorCode.PROTOCOL_ERROR)
        self._window_moved.notify_all()

    def _on_settings(self, frame: Frame) -> None:
        if frame.stream_id:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"SETTINGS on stream {frame.stream_id}")
        if frame.flags & frames.ACK:
            if frame.payload:
                raise ProtocolViolation(ErrorCode.FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload")
            return
        for setting, value in frames.parse_settings(frame.payload):
            if setting == Setting.INITIAL_WINDOW_SIZE:
                if value > frames.MAX_WINDOW:
                    raise ProtocolViolation(ErrorCode.FLOW_CONTROL_ERROR, f"an initial window of {value}")
                for stream in self._streams.values():  # §6.9.2: open streams' windows move too
                    stream.send_window += value - self._stream_window
                    if stream.send_window > frames.MAX_WINDOW:
                        raise ProtocolViolation(ErrorCode.FLOW_CONTROL_ERROR,
                                                f"an initial window of {value} overflows an open stream's")
                self._stream_window = value
            elif setting == Setting.MAX_FRAME_SIZE:
                if not frames.DEFAULT_FRAME_SIZE <= value <= frames.MAX_FRAME_SIZE:
                    raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"a max frame size of {value}")
                self._max_frame = value
            elif setting == Setting.ENABLE_PUSH and value > 1:
                raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"ENABLE_PUSH {value}")
        self._out += frames.build(Kind.SETTINGS, frames.ACK, 0)
        self._window_moved.notify_all()

    def _idle_check(self, stream_id: int, what: str) -> None:
        if stream_id > self._last_stream:
            raise ProtocolViolation(ErrorCode.PROTOCOL_ERROR, f"{what} on stream {stream_id}, never opened")

    def _refuse(self, stream_id: int, code: ErrorCode) -> None:
        """A stream error: RST_STREAM, and the call (if any) ends."""
        self._out += frames.rst_stream(stream_id, code)
        self._end_stream(stream_id)

    def _end_stream(self, stream_id: int) -> None:
        stream = self._drop(stream_id)
        if stream is not None:
            self._reset.append(stream.call)
        self._window_moved.notify_all()

    def _received_data(self, stream_id: int, data: bytes) -> None:
        stream = self._streams[stream_id]
        if stream.refused is not None:
            return
        self._buffered += len(data)
        stream.body += data
        try:
            wire.declared_length(stream.body, self._max_receive)
            if self._buffered > BUFFERED_PER_CONNECTION:
                raise wire.WireError(StatusCode.RESOURCE_EXHAUSTED,
                                     f"more than {BUFFERED_PER_CONNECTION} bytes of requests in flight on a connection")
        except wire.WireError as e:
            # Answered now, and the rest of the request is not wanted (RST_STREAM NO_ERROR after
            # the status, as grpc's servers do).
            self._drop(stream_id)
            self._send_status(stream_id, e.code, str(e), headers_sent=False)
            self._out += frames.rst_stream(stream_id, ErrorCode.NO_ERROR)

    def _request_ended(self, stream_id: int) -> tuple[int, _Stream, bytes] | None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return None
        try:
            if stream.refused is not None:
                raise stream.refused
            payload = wire.single_message(stream.body, self._max_receive)
        except wire.WireError as e:
            self._drop(stream_id)
            self._send_status(stream_id, e.code, str(e), headers_sent=False)
            return None
        self._buffered -= len(stream.body)
        stream.body = bytearray()
        stream.request_ended = True
        return stream_id, stream, payload

    def _drop(self, stream_id: int) -> _Stream | None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._buffered -= len(stream.body)
            if not stream.request_ended:  # no task was made for it: its slot is free now
                self._slots.discard(stream_id)
        return stream

    # -- the calls' threads ------------------------------------------------------------------

    def send_headers(self, stream_id: int) -> None:
        """The reply's headers, queued: they leave with the first message's bytes."""
        with self._lock:
            self._open(stream_id)
            self._out += frames.headers(stream_id, RESPONSE_HEAD, False, self._max_frame)

    def send_message(self, stream_id: int, payload: bytes, flush: bool) -> None:
        """One reply message, in as many DATA frames as the client's windows and frame size allow.
        Its last bytes stay queued unless ``flush``: a unary reply leaves in one write with its
        headers and status (finish)."""
        data = memoryview(wire.frame(payload))
        while data:
            with self._lock:
                stream = self._open(stream_id)
                n = min(stream.send_window, self._send_window, self._max_frame, len(data))
                if n > 0:
                    self._out += frames.data_head(stream_id, n)
                    self._out += data[:n]
                    stream.send_window -= n
                    self._send_window -= n
            if n <= 0:
                self._flush()  # the client opens its windows as it reads what is queued
                self._wait_for_window(stream_id)
                continue
            data = data[n:]
            if data or flush:
                self._flush()

    def _wait_for_window(self, stream_id: int) -> None:
        with self._lock:
            stalled_until = time.monotonic() + STALL_SECONDS
            while min(self._open(stream_id).send_window, self._send_window) <= 0:
                left = stalled_until - time.monotonic()
                if left <= 0:
                    self._out += frames.rst_stream(stream_id, ErrorCode.CANCEL)
                    self._drop(stream_id)
                    raise StreamGone(f"the client took no reply data for {STALL_SECONDS:.0f} s")
                self._window_moved.wait(left)

    def finish(self, stream_id: int, code: StatusCode, message: str, headers_sent: bool) -> None:
        """The call's status; its stream is done with once that is written (a stop's grace
        counts the call until then)."""
        with self._lock:
            if stream_id in self._streams and not self._closed:
                self._send_status(stream_id, code, message, headers_sent)
        self._flush()
        with self._lock:
            self._drop(stream_id)

    def _open(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if self._closed or stream is None:
            raise StreamGone(f"stream {stream_id} was reset or its connection closed")
        return stream

    def _send_status(self, stream_id: int, code: StatusCode, message: str, headers_sent: bool) -> None:
        # Without a reply yet, the status goes alone ("Trailers-Only").
        block = fields.encode(trailers(code, message))
        self._out += frames.headers(stream_id, block if headers_sent else RESPONSE_HEAD + block, True, self._max_frame)

    # -- both, and the server ----------------------------------------------------------------

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data, self._out = self._out, bytearray()
            if not data:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                self.shutdown()

    def refuse_new_calls(self) -> None:
        with self._lock:
            self._refusing = True

    def task_done(self, stream_id: int) -> None:
        """The call's task ended (answered, failed, or skipped as reset): its slot is free."""
        with self._lock:
            self._slots.discard(stream_id)

    def calls(self) -> int:
        """Calls not done yet: a stop's grace waits for them."""
        with self._lock:
            return len(self._slots)

    def goodbye(self) -> None:
        """GOAWAY if it can leave at once, then the socket closes: the reading thread ends every
        call still open. Never waits on a client that does not read."""
        with self._lock:
            if not self._started:  # run() has not begun: it will see _closed and end at once
                self._closed = True
            elif not self._closed:
                self._out += frames.goaway(self._last_stream, ErrorCode.NO_ERROR)
        if self._send_lock.acquire(timeout=0.2):
            try:
                with self._lock:
                    data, self._out = self._out, bytearray()
                self._sock.send(data, socket.MSG_DONTWAIT)
            except OSError:
                pass
            finally:
                self._send_lock.release()
        self.shutdown()

    def shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _close(self) -> None:
        self.shutdown()  # a write blocked on this socket fails now
        with self._lock:
            self._closed = True
            streams = list(self._streams.values())
            self._streams.clear()
            self._window_moved.notify_all()
        for stream in streams:
            stream.call.end()
        with self._send_lock:  # no write is using the descriptor as it closes
            self._sock.close()
        self._on_closed(self)


def _name(kind: int) -> str:
    try:
        return Kind(kind).name
    except ValueError:
        return f"type-{kind}"
