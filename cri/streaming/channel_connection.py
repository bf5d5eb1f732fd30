"""A channel protocol connection over a WebSocket: many byte streams on one upgraded socket.

Threads: the connection owns one reader thread, which alone reads the socket. It answers pings
and close frames and fills one bounded ChannelBuffer per channel the client may send on. Any
thread may write; a lock keeps each frame whole on the wire. Writes block while the kernel's
send buffer is full (no user-space send queue): a peer that reads nothing for
``Limits.write_timeout`` seconds fails the write with WriteTimeout and ends the connection.
"""
from __future__ import annotations

import enum
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage

from cri.streaming import channel_protocol
from cri.streaming.channel_buffer import ChannelBuffer
from cri.streaming.channel_protocol import ChannelProtocol, MalformedMessage
from cri.streaming.socket_transport import SocketTransport
from runtime import errors

NORMAL_CLOSE_CODES = (1000, 1001, 1005)  # normal, going away, no code given


@dataclass(frozen=True)
class Limits:
    max_message: int = 1 << 20  # bytes in one received message, all its frames together
    channel_buffer: int = 256 << 10  # received bytes a channel holds before the reader waits
    write_chunk: int = 32 << 10  # data bytes per sent message
    write_timeout: float = 60.0  # seconds a write may wait with no byte taken by the peer
    close_timeout: float = 30.0  # seconds to wait for the peer's answer to our close frame
    idle_timeout: float | None = None  # close after this long without a frame either way


DEFAULT_LIMITS = Limits()


class ConnectionClosed(errors.Unavailable):
    """The connection has ended (or is ending): nothing more can be written."""


class WriteTimeout(ConnectionClosed):
    """The peer took no byte for Limits.write_timeout seconds; the connection was ended."""


class _Phase(enum.Enum):
    OPEN = 1
    CLOSING = 2  # our close frame is out; reading on for the peer's answer, discarding data
    DRAINING = 3  # the peer broke the framing: our close frame is out, the rest is discarded unread
    DONE = 4


class ChannelConnection:
    """Made by websocket.accept(). Call close() when done, always: it also releases the socket."""

    def __init__(
        self, sock: socket.socket, ws: WSConnection, protocol: ChannelProtocol, readable: Collection[int],
        limits: Limits, received: bytes,
    ) -> None:
        self.protocol = protocol
        self._transport, self._ws, self._limits = SocketTransport(sock), ws, limits
        self._buffers = {channel: ChannelBuffer(limits.channel_buffer) for channel in readable}
        self._write_lock = threading.Lock()  # one frame on the wire at a time
        self._state_lock = threading.Lock()  # wsproto's state and _phase: reader and writers share them
        self._writable = True  # False once aborted or finished: no frame may start
        self._phase = _Phase.OPEN
        self._close_deadline: float | None = None
        self._messages = channel_protocol.MessageAssembler(protocol, limits.max_message)
        self._last_frame = time.monotonic()
        self._error: str | None = None
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._run, args=(received,), name="websocket-reader", daemon=True)
        self._reader.start()

    @property
    def last_frame_at(self) -> float:
        """time.monotonic() of the last frame received or sent: the idle-timeout hook."""
        return self._last_frame

    @property
    def error(self) -> str | None:
        """Why the connection ended abnormally; None while open or after a clean close."""
        return self._error

    def read(self, channel: int, size: int = 64 << 10, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes the client sent on ``channel``, waiting for some; b"" at its end
        (v5 close signal, the connection closing or lost). Raises TimeoutError after ``timeout``."""
        return self._buffer(channel).read(size, timeout)

    def stop_reading(self, channel: int) -> None:
        """Drops what the client sent and still sends on ``channel``, so it can never hold the
        reader up (e.g. stdin once the process has exited)."""
        self._buffer(channel).discard()

    def write(self, channel: int, data: bytes) -> None:
        """Sends ``data`` on ``channel``, in messages of at most Limits.write_chunk bytes (an empty
        ``data`` sends one empty message: the "stream open" signal). Blocks while the peer does not
        read. Raises ConnectionClosed or WriteTimeout."""
        step = self._limits.write_chunk
        for start in range(0, max(len(data), 1), step):
            message = channel_protocol.encode(self.protocol, channel, data[start:start + step])
            event = BytesMessage(data=message) if isinstance(message, bytes) else TextMessage(data=message)
            with self._write_lock:
                with self._state_lock:
                    if not self._writable or self._ws.state is not ConnectionState.OPEN:
                        raise ConnectionClosed(self._error or "the WebSocket connection is closed")
                    frame = self._ws.send(event)
                self._send(frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Ends the connection: sends a close frame and waits (Limits.close_timeout at most) for
        the peer to answer it, so that everything written before reaches the peer. Input still
        buffered can be read afterwards, then EOF. Idempotent; any thread but the reader's."""
        if not self._done.is_set():
            try:
                self._start_close(code, reason, _Phase.CLOSING)
            except ConnectionClosed:
                pass  # the connection ended meanwhile: nothing left to close
        if not self._done.wait(self._limits.close_timeout):
            self._fail(f"the peer did not answer the close frame within {self._limits.close_timeout} s")
            self.abort()
        self._reader.join(self._limits.close_timeout)

    def abort(self) -> None:
        """Ends the connection at once, without a close handshake; readers get EOF, writers
        ConnectionClosed. The socket is released once the reader thread has seen it."""
        self._fail("aborted")
        self._writable = False
        self._transport.shutdown()  # wakes the reader and any blocked writer
        self._end_input()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Waits until the connection has ended, by either side; False if still open after ``timeout``."""
        return self._done.wait(timeout)

    def _buffer(self, channel: int) -> ChannelBuffer:
        if channel not in self._buffers:
            raise ValueError(f"channel {channel} is not one the client sends on")
        return self._buffers[channel]

    def _run(self, received: bytes) -> None:
        try:
            if received:
                self._handle(received)
            while self._phase is not _Phase.DONE:
                data = self._receive()
                if data == b"":
                    if self._phase is _Phase.OPEN:
                        self._fail("the connection was lost without a close frame")
                    break
                if data:
                    self._handle(data)
        except (OSError, ConnectionClosed) as e:
            self._fail(f"connection error: {e}")
        finally:
            self._finish()

    def _receive(self) -> bytes | None:
        """What the socket has (b"" at its end), or None when a deadline came first."""
        wait = self._time_left()
        if wait is not None and wait <= 0:
            self._deadline_passed()
            return None
        return self._transport.receive(wait)

    def _time_left(self) -> float | None:
        deadlines = [d for d in (self._close_deadline, self._idle_deadline()) if d is not None]
        return min(deadlines) - time.monotonic() if deadlines else None

    def _idle_deadline(self) -> float | None:
        idle = self._limits.idle_timeout
        return None if idle is None or self._phase is not _Phase.OPEN else self._last_frame + idle

    def _deadline_passed(self) -> None:
        now = time.monotonic()
        if self._close_deadline is not None and now >= self._close_deadline:
            self._fail(f"the peer did not answer the close frame within {self._limits.close_timeout} s")
            self._phase = _Phase.DONE
        elif (idle := self._idle_deadline()) is not None and now >= idle:
            self._fail(f"no frame either way for {self._limits.idle_timeout} s")
            self._start_close(1001, "idle timeout", _Phase.CLOSING)

    def _handle(self, data: bytes) -> None:
        if self._phase is _Phase.DRAINING:
            return
        with self._state_lock:
            self._ws.receive_data(data)
            events = list(self._ws.events())
        for event in events:
            self._last_frame = time.monotonic()
            if isinstance(event, Message):
                self._on_message(event)
            elif isinstance(event, Ping):
                self._send_event(event.response(), ConnectionState.OPEN)
            elif isinstance(event, CloseConnection):
                self._on_close(event)

    def _on_message(self, event: Message[bytes | bytearray] | Message[str]) -> None:
        if self._phase is not _Phase.OPEN:
            return  # we are closing: whatever still comes is not wanted
        try:
            decoded = self._messages.add(event.data, event.message_finished)
        except MalformedMessage as e:
            self._fail(str(e))
            self._start_close(e.close_code, str(e), _Phase.CLOSING)
            return
        if isinstance(decoded, channel_protocol.EndOfInput) and decoded.channel in self._buffers:
            self._buffers[decoded.channel].end()
        elif isinstance(decoded, channel_protocol.Data) and decoded.channel in self._buffers:
            self._deliver(self._buffers[decoded.channel], decoded.data)
        # Data on a channel the client may not send on is dropped, as the kubelet does.

    def _deliver(self, buffer: ChannelBuffer, data: bytes) -> None:
        # Waiting here is the back-pressure: the socket is not read until the consumer catches up.
        while not buffer.put(data, self._time_left()):
            self._deadline_passed()
            if self._phase is _Phase.DONE:
                return

    def _on_close(self, event: CloseConnection) -> None:
        with self._state_lock:
            state = self._ws.state
        if state is ConnectionState.OPEN:
            # wsproto could not parse what the peer sent and says why in a close event of its own.
            self._fail(f"invalid WebSocket framing from the peer: {event.reason}")
            self._start_close(event.code, "invalid framing", _Phase.DRAINING)
            return
        if event.code not in NORMAL_CLOSE_CODES:
            self._fail(f"the peer closed with code {event.code}: {event.reason or ''}")
        self._send_event(event.response(), ConnectionState.REMOTE_CLOSING)  # unless it answers ours
        self._end_input()
        self._phase = _Phase.DONE

    def _start_close(self, code: int, reason: str, phase: _Phase) -> None:
        """Sends our close frame if none went out yet, and stops taking input."""
        with self._write_lock:
            with self._state_lock:
                if not self._writable or self._ws.state is not ConnectionState.OPEN:
                    return
                frame = self._ws.send(CloseConnection(code=code, reason=reason))
                self._phase = phase
                self._close_deadline = time.monotonic() + self._limits.close_timeout
            self._end_input()
            self._send(frame)
        if phase is _Phase.DRAINING:
            self._transport.shutdown(socket.SHUT_WR)  # nothing more can be parsed: the peer may hang up

    def _send_event(self, event: Event, only_in: ConnectionState) -> None:
        """Sends a control frame if the connection is still in the state that calls for it (a
        close() on another thread may have moved it on)."""
        with self._write_lock:
            with self._state_lock:
                if not self._writable or self._ws.state is not only_in:
                    return
                frame = self._ws.send(event)
            self._send(frame)

    def _send(self, frame: bytes) -> None:
        """Puts one whole frame on the wire; the caller holds the write lock. A frame cut short
        would corrupt the stream, so any failure ends the connection."""
        try:
            self._transport.send(frame, self._limits.write_timeout)
        except TimeoutError as e:
            message = f"the peer read nothing for {self._limits.write_timeout} s"
            self._fail(message)
            self.abort()
            raise WriteTimeout(message) from e
        except OSError as e:
            self._fail(f"connection error: {e}")
            self.abort()
            raise ConnectionClosed(f"the WebSocket connection is closed: {e}") from e
        self._last_frame = time.monotonic()

    def _fail(self, message: str) -> None:
        if self._error is None:  # the first cause is the one worth reporting
            self._error = message

    def _end_input(self) -> None:
        for buffer in self._buffers.values():
            buffer.end()

    def _finish(self) -> None:
        self._phase = _Phase.DONE
        self._end_input()
        self._transport.shutdown()
        self._writable = False
        with self._write_lock:  # no writer is mid-frame on the descriptor
            self._transport.close()
        self._done.set()

