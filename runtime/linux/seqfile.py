"""Reading a kernel seq_file (cgroupfs, /proc) whole, in as few reads as the kernel allows.

A read of a seq_file returns whole records only. A file shown as one record (memory.stat,
cpu.stat) comes whole in one read. A file shown record by record (cgroup.procs: a pid each;
/proc/net/dev: an interface each) comes at most a page at a time: the kernel stops filling its
page-sized buffer before the record that would not fit, however large the caller's buffer. So a
read that returned less than a page minus the longest record was the end; a longer one is followed
by another. No cgroup or /proc/net record comes near MAX_RECORD.

Regular files (the fake trees of unit tests) read the same way: a short read is their end too.
"""
from __future__ import annotations

import os

PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_RECORD = 1024
_BUFFER = 65536
# A read that returned fewer bytes than this was the file's end.
_SHORT = PAGE - MAX_RECORD


def read_whole(fd: int) -> bytes:
    """The whole file behind ``fd`` from offset 0 (pread: a file kept open is read again the same
    way). Mostly one read: stat files are a record or a few short ones."""
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, _BUFFER, offset)
        chunks.append(chunk)
        if len(chunk) < _SHORT:
            return b"".join(chunks)  # one chunk: joined without a copy
        offset += len(chunk)
