"""Reading a blob while it downloads: from the pipe the download is written into (or a file it
is appended to), followed to the end.

The reader reads what is there and, at the end of the data (the pipe's writer closed it), asks
``ended(seconds)``, which waits for word from the download: True once the download is whole (the
blob verified: what was read is all of it), False when there was none yet, or CutOff when the
download failed or its requester went. The end of the data alone says nothing: a download cut off
or a blob that failed its digest ends it too.
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
    """A raw reader of the file at ``ingest`` (opened now), or of the pipe or file open as the fd
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
