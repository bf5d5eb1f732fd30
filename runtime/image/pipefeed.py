"""Writing a layer's download into the pipe its unpacker reads, so no copy of it goes to disk.

A file in the page cache costs the kernel a fresh page for every 4 KiB written (here ~3.6 ms of
CPU per MiB, about what decompressing it costs); a pipe reuses the same few pages.
"""
from __future__ import annotations

import fcntl
import os
import select
from collections.abc import Callable, Iterable

# The largest pipe an unprivileged process may ask for (fs.pipe-max-size's default): the unpacker
# reads 1 MiB at a time, and the download runs ahead of it by that much.
PIPE_BYTES = 1 << 20
_WAIT_MS = 1000  # how often a writer waiting for room asks whether to go on


def layer_pipe() -> tuple[int, int]:
    """A pipe (read end, write end), both close-on-exec, the write end non-blocking."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # a lower fs.pipe-max-size: the default 64 KiB pipe works, with more wake-ups
    os.set_blocking(write_end, False)
    return read_end, write_end


class ReaderGone(Exception):
    """The pipe's reader closed its end before the stream's end: it stopped, and says why itself."""


def feed(chunks: Iterable[bytes], write_end: int, go_on: Callable[[], None]) -> None:
    """Writes every chunk into the pipe; while the pipe is full, calls ``go_on()`` every second
    (it raises to stop). ReaderGone once the reader has closed its end."""
    poller = select.poll()
    poller.register(write_end, select.POLLOUT)
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            try:
                view = view[os.write(write_end, view):]
            except BrokenPipeError:
                raise ReaderGone() from None
            except BlockingIOError:
                while not poller.poll(_WAIT_MS):
                    go_on()
