"""The socket under a connection: polled receives, whole sends that a peer taking nothing fails,
and shutdown safe against a concurrent close."""
from __future__ import annotations

import select
import socket
import threading
import time

RECEIVE_SIZE = 64 << 10


def send_all(sock: socket.socket, data: bytes, timeout: float) -> None:
    """Sends all of ``data``; raises TimeoutError if the peer takes no byte for ``timeout`` s."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    deadline = time.monotonic() + timeout
    while view:
        try:
            sent = sock.send(view, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no progress sending for {timeout} s") from None
            poller.poll(left * 1000)
            continue
        view = view[sent:]
        deadline = time.monotonic() + timeout


class SocketTransport:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()  # shutdown must never reach a descriptor number close() freed
        self._closed = False
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)

    def send(self, data: bytes, timeout: float) -> None:
        send_all(self._sock, data, timeout)

    def receive(self, timeout: float | None) -> bytes | None:
        """What the socket has, b"" at its end, None if nothing came within ``timeout`` s."""
        if not self._poller.poll(None if timeout is None else max(timeout, 0) * 1000):
            return None
        try:
            return self._sock.recv(RECEIVE_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        """Ends the stream (wakes a blocked receive or send); a no-op once disconnected or closed."""
        with self._lock:
            if self._closed:
                return
            try:
                self._sock.shutdown(how)
            except OSError:
                pass  # already disconnected

    def close(self) -> None:
        with self._lock:
            self._sock.close()
            self._closed = True
