"""One lock per object id, so that state-changing calls on one sandbox or container run one at a
time while calls on different objects run side by side (two StartContainer of one container, a
Start racing a Remove, StopPodSandbox racing CreateContainer in that pod).

Order, to stay free of deadlocks: a sandbox's lock before any of its containers' locks, never the
other way round. Locks are made on demand and dropped when no one holds or waits for them.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class KeyedLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, int]] = {}  # key → (lock, holders + waiters)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.RLock()  # re-entrant: Remove calls Stop on the same object
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)
