"""Reading a blob while the content store writes it: its ingest file, followed to the end.

The writer appends to the ingest file and, once the blob is verified, renames it to the blob's
path; a failed download removes it instead. So a reader at the end of the data waits for more,
and the end is final once the blob's path exists (the rename came after the last write). With
neither path left, the download failed: the stream is cut off.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable

# A wait at the end of the data: the download's next 1 MiB arrives within a few ms here.
POLL_S = 0.002


class CutOff(OSError):
    """The download ended without a blob: what was read is all there will be."""


class GrowingFile(io.RawIOBase):
    """A raw reader of the blob growing at ``ingest`` (opened now) that ends when ``blob`` exists.

    ``wait(seconds)`` sleeps between looks at the end of the data and returns True when the reader
    should give up (its requester is gone)."""

    def __init__(self, ingest: str, blob: str, wait: Callable[[float], bool]) -> None:
        self._fd = os.open(ingest, os.O_RDONLY | os.O_CLOEXEC)
        self._ingest = ingest
        self._blob = blob
        self._wait = wait

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            n = os.readv(self._fd, [buffer])
            if n:
                return n
            if os.path.exists(self._blob):  # renamed in place after its last write
                return os.readv(self._fd, [buffer])
            if not os.path.exists(self._ingest) and not os.path.exists(self._blob):
                raise CutOff(f"download of {self._blob} ended without the blob")
            if self._wait(POLL_S):
                raise CutOff(f"unpacking {self._blob}: its requester is gone")

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
