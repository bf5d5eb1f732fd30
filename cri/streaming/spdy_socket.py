"""A SPDY connection's socket: exact reads for its one reader thread, whole frames written from any
thread (one at a time, each encoded under the same lock, so the header compression context sees
frames in wire order), and a teardown safe against threads still blocked in it."""
from __future__ import annotations

import socket
import threading
import time

from cri.streaming.spdy_errors import ConnectionClosed
from cri.streaming.spdy_frames import Frame, encode_frame
from cri.streaming.spdy_headers import HeaderDeflater


class FramedSocket:
    def __init__(self, sock: socket.socket, preread: bytes) -> None:
        sock.settimeout(None)
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._preread = preread
        self._deflater = HeaderDeflater()
        self._write_lock = threading.Lock()
        self._teardown_lock = threading.Lock()  # shutdown() only while the socket is open
        self._closed = False
        self.last_sent_at = time.monotonic()

    def read_exact(self, size: int) -> bytes:
        """size bytes; EOFError if the peer closes first (or shutdown() stopped reading)."""
        head, self._preread = self._preread[:size], self._preread[size:]
        data = head + self._rfile.read(size - len(head)) if size > len(head) else head
        if len(data) < size:
            raise EOFError("the peer closed the connection")
        return data

    def send(self, frame: Frame) -> None:
        """Blocks while the socket is full (the peer not reading); raises ConnectionClosed."""
        with self._write_lock:
            if self._closed:
                raise ConnectionClosed("the connection is closed")
            data = encode_frame(frame, self._deflater)
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise ConnectionClosed(f"sending failed: {e}") from e
            self.last_sent_at = time.monotonic()

    def send_if_room(self, frame: Frame, wait: float) -> None:
        """Sends a frame without compressed headers if, within wait, no other writer holds the
        socket and it has room: a last word for a peer that may not be reading."""
        if not self._write_lock.acquire(timeout=wait):
            return  # a writer is stuck on a full socket
        try:
            if not self._closed:
                self._sock.send(encode_frame(frame, self._deflater), socket.MSG_DONTWAIT)
        except OSError:
            pass  # full: a peer that does not read would not read this either
        finally:
            self._write_lock.release()

    def shutdown(self, how: int) -> None:
        """Ends one or both directions; wakes threads blocked on the socket in that direction."""
        with self._teardown_lock:
            if not self._closed:
                try:
                    self._sock.shutdown(how)
                except OSError:
                    pass  # already disconnected

    def close(self) -> None:
        """Shuts the socket down, waits for any writer inside send() to leave, and closes it; from
        the reader thread (or with no reader), since it closes what the reader reads."""
        self.shutdown(socket.SHUT_RDWR)
        with self._write_lock, self._teardown_lock:
            self._closed = True
            self._rfile.close()
            self._sock.close()
