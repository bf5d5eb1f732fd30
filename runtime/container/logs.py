"""Container output in the CRI log format: `<RFC3339Nano> <stdout|stderr> <P|F> <text>\n`.

A line longer than MAX_LINE is split into partial (P) records followed by a full (F) one, so the
kubelet's log reader can join them and a runaway writer cannot make one unbounded line in memory;
output that ends without a newline ends with a partial record.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

MAX_LINE = 16 * 1024
PARTIAL, FULL = b"P", b"F"


def timestamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z".encode()


def record(ns: int, stream: bytes, tag: bytes, text: bytes) -> bytes:
    return b"%s %s %s %s\n" % (timestamp(ns), stream, tag, text)


class LineSplitter:
    """Turns a byte stream into CRI records, emitted through `emit(tag, text)`."""

    def __init__(self, emit: Callable[[bytes, bytes], None], max_line: int = MAX_LINE) -> None:
        self._emit = emit
        self._max = max_line
        self._pending = b""

    def feed(self, data: bytes) -> None:
        buffer = self._pending + data
        start = 0
        while True:
            newline = buffer.find(b"\n", start, start + self._max + 1)
            if newline >= 0:
                self._emit(FULL, buffer[start:newline])
                start = newline + 1
            elif len(buffer) - start > self._max:
                self._emit(PARTIAL, buffer[start:start + self._max])
                start += self._max
            else:
                break
        self._pending = buffer[start:]

    @property
    def pending(self) -> bytes:
        """The unterminated tail not emitted yet."""
        return self._pending

    def close(self) -> None:
        """At EOF an unterminated last line is a partial one (P), as containerd writes it: a reader
        (the kubelet's termination message from the log, `kubectl logs`) must not add a newline
        the container never wrote."""
        if self._pending:
            self._emit(PARTIAL, self._pending)
            self._pending = b""
