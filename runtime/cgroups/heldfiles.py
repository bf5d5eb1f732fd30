"""Cgroup stat files kept open between reads.

A scrape reads ~14 files per cgroup. Opening one costs a path walk through cgroupfs and three
syscalls (~8 us here); a pread at offset 0 of a file already open regenerates the same seq_file
text in ~1.3 us. So the files read for stats stay open, keyed by path:

- a cgroup that is removed turns its open files into ENODEV: that read drops the descriptor and
  opens the path afresh, which gives None if the cgroup is gone, or the new cgroup's file if one
  was made again under the same path;
- a descriptor not read between two sweeps (``idle_s`` apart) is closed, so files of cgroups
  that are never read again do not pile up;
- at most ``limit`` descriptors are held (a quarter of RLIMIT_NOFILE by default); past that a read
  opens and closes as before.

Only reads go through here; writes (limits, cgroup.procs) always open the file. One lock covers
the map and the pread, so a descriptor is never read after another thread closed it (and its
number was reused).
"""
from __future__ import annotations

import errno
import os
import resource
import threading
import time
from collections.abc import Callable

from runtime.errors import Internal

_ABSENT = (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP)
_READ_SIZE = 65536
IDLE_S = 120.0


def default_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 4096 if soft == resource.RLIM_INFINITY else soft // 4


def read_from(fd: int) -> str:
    """The whole file from offset 0. cgroup files are seq_files: a read returns every line that
    fits, so one that came back well short of the buffer was the end."""
    data = os.pread(fd, _READ_SIZE, 0)
    if len(data) <= _READ_SIZE // 2:
        return data.decode()
    chunks = [data]
    while len(chunks[-1]) > _READ_SIZE // 2:
        chunks.append(os.pread(fd, _READ_SIZE, sum(map(len, chunks))))
    return b"".join(chunks).decode()


class HeldFiles:
    def __init__(self, limit: int | None = None, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = default_limit() if limit is None else limit
        self._idle_s = idle_s
        self._clock = clock
        self._fds: dict[str, int] = {}
        self._read_since_sweep: set[str] = set()
        self._next_sweep = clock() + idle_s
        self._lock = threading.Lock()

    def read(self, path: str) -> str | None:
        """The file's text, or None when it does not exist (as cgroupfs.read_optional)."""
        with self._lock:
            if self._clock() >= self._next_sweep:
                self._sweep()
            fd = self._fds.get(path)
            if fd is not None:
                # The common case, written out: a scrape comes here ~14 times per cgroup.
                try:
                    data = os.pread(fd, _READ_SIZE, 0)
                except OSError as e:
                    if e.errno not in _ABSENT:
                        raise Internal(f"cgroup file {path}: reading: {e}") from e
                    self._drop(path)  # the cgroup was removed; maybe made again: open afresh
                else:
                    self._read_since_sweep.add(path)
                    return data.decode() if len(data) <= _READ_SIZE // 2 else self._read(path, fd)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                if e.errno in _ABSENT:
                    return None
                raise Internal(f"cgroup file {path}: reading: {e}") from e
            text = self._read(path, fd)
            if text is None or len(self._fds) >= self._limit:
                os.close(fd)
            else:
                self._fds[path] = fd
                self._read_since_sweep.add(path)
            return text

    def held(self) -> int:
        with self._lock:
            return len(self._fds)

    def close(self) -> None:
        with self._lock:
            for path in list(self._fds):
                self._drop(path)

    @staticmethod
    def _read(path: str, fd: int) -> str | None:
        try:
            return read_from(fd)
        except OSError as e:
            if e.errno in _ABSENT:
                return None
            raise Internal(f"cgroup file {path}: reading: {e}") from e

    def _drop(self, path: str) -> None:
        os.close(self._fds.pop(path))
        self._read_since_sweep.discard(path)

    def _sweep(self) -> None:
        for path in [p for p in self._fds if p not in self._read_since_sweep]:
            self._drop(path)
        self._read_since_sweep.clear()
        self._next_sweep = self._clock() + self._idle_s
