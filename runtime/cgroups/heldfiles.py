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

Only stat files go through here; writes always open the file, and so do reads of cgroup.procs:
on v1 an open cgroup.procs keeps the pid list it made until a second after its last read, so one
read more often than that would never change. One lock covers the map and the pread, so a
descriptor is never read after another thread closed it (and its number was reused).
"""
from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Sequence

from runtime.cgroups.cgroupfs import open_optional, read_open

IDLE_S = 120.0


def default_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 4096 if soft == resource.RLIM_INFINITY else soft // 4


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

    def read_many(self, paths: Sequence[str]) -> list[str | None]:
        """Each file's text, or None where it does not exist (as cgroupfs.read_optional), under
        one lock: a scrape reads a cgroup's dozen files at once."""
        with self._lock:
            if self._clock() >= self._next_sweep:
                self._sweep()
            return [self._read(path) for path in paths]

    def _read(self, path: str) -> str | None:
        fd = self._fds.get(path)
        if fd is not None:
            text = read_open(path, fd)
            if text is not None:
                self._read_since_sweep.add(path)
                return text
            self._drop(path)  # the cgroup was removed; maybe made again: open afresh
        fd = open_optional(path)
        if fd is None:
            return None
        text = read_open(path, fd)
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

    def _drop(self, path: str) -> None:
        os.close(self._fds.pop(path))
        self._read_since_sweep.discard(path)

    def _sweep(self) -> None:
        for path in [p for p in self._fds if p not in self._read_since_sweep]:
            self._drop(path)
        self._read_since_sweep.clear()
        self._next_sweep = self._clock() + self._idle_s
