"""One channel's received bytes, between the connection's reader thread and the channel's consumer.

Bounded: the reader's put() waits while the buffer holds ``limit`` bytes or more, so a consumer
that stops reading stops the reader, and with it the reading from the socket (TCP then pushes back
on the client). One message past the limit is still taken whole, so a buffer never holds more
than ``limit`` plus one message.
"""
from __future__ import annotations

import threading


class ChannelBuffer:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self._ended = False  # no more data will come: readers get what is left, then EOF
        self._changed = threading.Condition()

    @property
    def buffered(self) -> int:
        with self._changed:
            return len(self._data)

    def put(self, data: bytes, timeout: float | None = None) -> bool:
        """Appends data once there is room (dropping it if the buffer has ended). False if there
        was still no room after ``timeout`` seconds, the data then not taken."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._ended or len(self._data) < self._limit, timeout):
                return False
            if not self._ended:
                self._data += data
                self._changed.notify_all()
            return True

    def read(self, size: int, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes, waiting for some; b"" once the buffer has ended and is empty.
        Raises TimeoutError if nothing came within ``timeout`` seconds."""
        if size <= 0:
            raise ValueError("read size must be positive")
        with self._changed:
            if not self._changed.wait_for(lambda: self._data or self._ended, timeout):
                raise TimeoutError(f"no data within {timeout} s")
            chunk = bytes(self._data[:size])
            del self._data[:size]
            self._changed.notify_all()
            return chunk

    def end(self) -> None:
        """No more data: what is buffered can still be read, then EOF."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def discard(self) -> None:
        """The consumer wants no more: drops what is buffered and all that still comes."""
        with self._changed:
            self._ended = True
            self._data.clear()
            self._changed.notify_all()
