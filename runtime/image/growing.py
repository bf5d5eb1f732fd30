"""Reading a blob while the content store writes it: its ingest file, followed to the end.

The writer appends to the ingest file; the reader reads what is there and, at the end of the data,
asks ``ended(seconds)``, which waits for word from the download: True once the download is whole
(the blob verified: whatever is in the file now is all of it), False when there was none yet, or
CutOff when the download failed or its requester went. The word comes explicitly, not from the
paths: the same blob downloaded by two pulls at once lands at the same blob path from either.
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
    """A raw reader of the ingest file at ``ingest`` (opened now), or of the one open as the fd
    ``ingest`` (which it then owns), whose end ``ended`` tells."""

    def __init__(self, ingest: str | int, ended: Callable[[float], bool]) -> None:
        self._fd = ingest if isinstance(ingest, int) else os.open(ingest, os.O_RDONLY | os.O_CLOEXEC)
        self._ended = ended
        self._whole = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            n = os.readv(self._fd, [buffer])
            if n or self._whole:
                return n
            # Read again once told: what was written before the word is in the file by then.
            self._whole = self._ended(POLL_S)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
