"""One client connection: HTTP/2 by h2's state machine, read by one thread of its own; the calls
run in the server's pool and send their replies through send_headers/send_message/finish.

Locks: ``_lock`` guards the h2 state and the streams (never held across a blocking call);
``_send_lock`` orders the writes, taken before ``_lock`` so bytes leave in the order h2 made them
(HPACK's state depends on that order). A client that stops reading blocks a write for at most
SEND_TIMEOUT seconds, then loses the connection.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from cri.rpc import wire
from cri.rpc.context import Call
from cri.rpc.status import StatusCode, trailers

log = logging.getLogger("pycrid.rpc")

RESPONSE_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
MAX_CONCURRENT_STREAMS = 256  # a client past it waits for a stream to end (grpc-go queues)
MAX_HEADER_LIST_SIZE = 16 * 1024  # as grpc's servers
WINDOW = 1 << 20  # what each stream and the connection may send ahead of our reading
BUFFERED_PER_CONNECTION = 64 << 20  # request bytes held at once over all of a connection's streams
SEND_TIMEOUT = 30.0
STALL_SECONDS = 60.0  # a reply the client grants no window for this long is abandoned
RECEIVE_BYTES = 1 << 16

Start = Callable[["Connection", int, wire.RequestHead, bytes, Call], None]


class StreamGone(Exception):
    """The call's stream was reset, or its connection closed: nothing more can be sent."""


@dataclass
class _Stream:
    call: Call
    head: wire.RequestHead | None = None
    refused: wire.WireError | None = None
    body: bytearray = field(default_factory=bytearray)


class Connection:
    def __init__(self, sock: socket.socket, start: Start, max_receive: int,
                 on_closed: Callable[[Connection], None]) -> None:
        self._sock = sock
        self._start = start
        self._max_receive = max_receive
        self._on_closed = on_closed
        # Header validation off both ways: ours are constant, and of the client's only the few
        # fields wire.read_head reads count (validating every field was a third of a call's reading).
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False, normalize_inbound_headers=False))
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
        })
        self._lock = threading.Lock()
        self._window_moved = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._reset: list[Call] = []  # calls the client reset, ended once the lock is released
        self._buffered = 0
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
                self._h2.initiate_connection()
                self._h2.increment_flow_control_window(WINDOW)
            self._flush()
            while not self._closed:
                data = self._sock.recv(RECEIVE_BYTES)
                if not data:
                    break
                with self._lock:
                    try:
                        events = self._h2.receive_data(data)
                    except h2.exceptions.ProtocolError as e:
                        log.info("closing a CRI connection: HTTP/2 protocol error: %s", e)
                        events, self._closed = [], True  # h2 queued the GOAWAY that says why
                    ready = [started for event in events if (started := self._on(event)) is not None]
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

    def _on(self, event: h2.events.Event) -> tuple[int, _Stream, bytes] | None:
        """Applies one event (under the lock); a call whose request is whole comes back to start."""
        if isinstance(event, h2.events.RequestReceived):
            self._received_head(event.stream_id, event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            self._received_data(event.stream_id, event.data or b"")
        elif isinstance(event, h2.events.StreamEnded):
            return self._request_ended(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            stream = self._drop(event.stream_id)
            if stream is not None:
                self._reset.append(stream.call)
            self._window_moved.notify_all()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window_moved.notify_all()
        return None

    def _received_head(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self._refusing:  # the server stops: the client may retry elsewhere or later
            self._h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            head = wire.read_head(headers)
        except wire.WireError as e:
            self._streams[stream_id] = _Stream(Call(None), refused=e)
            return
        deadline = None if head.timeout is None else time.monotonic() + head.timeout
        self._streams[stream_id] = _Stream(Call(deadline), head)

    def _received_data(self, stream_id: int, data: bytes) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.refused is not None:
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
            try:
                self._h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
            except h2.exceptions.StreamClosedError:
                pass  # the request had ended already: the status closed the stream

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
        return stream_id, stream, payload

    def _drop(self, stream_id: int) -> _Stream | None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._buffered -= len(stream.body)
        return stream

    # -- the calls' threads ------------------------------------------------------------------

    def send_headers(self, stream_id: int) -> None:
        """The reply's headers, queued: they leave with the first message's bytes."""
        with self._lock:
            self._check_open(stream_id)
            self._h2.send_headers(stream_id, RESPONSE_HEADERS)

    def send_message(self, stream_id: int, payload: bytes, flush: bool) -> None:
        """One reply message, in as many DATA frames as the client's windows and frame size allow.
        Its last bytes stay queued unless ``flush``: a unary reply leaves in one write with its
        headers and status (finish)."""
        data = memoryview(wire.frame(payload))
        while data:
            with self._lock:
                window = self._window(stream_id)
            if window <= 0:
                self._flush()  # the client opens its windows as it reads what is queued
                self._wait_for_window(stream_id)
            with self._lock:
                # Again: another stream may have spent the connection's window meanwhile.
                n = min(self._window(stream_id), self._h2.max_outbound_frame_size, len(data))
                if n > 0:
                    self._h2.send_data(stream_id, data[:n].tobytes())
            data = data[n:]
            if data or flush:
                self._flush()

    def _wait_for_window(self, stream_id: int) -> None:
        with self._lock:
            stalled_until = time.monotonic() + STALL_SECONDS
            while self._window(stream_id) <= 0:
                left = stalled_until - time.monotonic()
                if left <= 0:
                    self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
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

    def _window(self, stream_id: int) -> int:
        self._check_open(stream_id)
        return self._h2.local_flow_control_window(stream_id)

    def _check_open(self, stream_id: int) -> None:
        if self._closed or stream_id not in self._streams:
            raise StreamGone(f"stream {stream_id} was reset or its connection closed")

    def _send_status(self, stream_id: int, code: StatusCode, message: str, headers_sent: bool) -> None:
        # Without a reply yet, the status goes alone ("Trailers-Only").
        fields = trailers(code, message) if headers_sent else RESPONSE_HEADERS + trailers(code, message)
        try:
            self._h2.send_headers(stream_id, fields, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass  # the client reset it meanwhile: nobody to tell

    # -- both, and the server ----------------------------------------------------------------

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._h2.data_to_send()
            if not data:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                self.shutdown()

    def refuse_new_calls(self) -> None:
        with self._lock:
            self._refusing = True

    def calls(self) -> int:
        with self._lock:
            return len(self._streams)

    def goodbye(self) -> None:
        """GOAWAY if it can leave at once, then the socket closes: the reading thread ends every
        call still open. Never waits on a client that does not read."""
        with self._lock:
            if not self._started:  # run() has not begun: it will see _closed and end at once
                self._closed = True
            elif not self._closed:
                self._h2.close_connection()
        if self._send_lock.acquire(timeout=0.2):
            try:
                with self._lock:
                    data = self._h2.data_to_send()
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
