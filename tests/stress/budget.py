"""The run's budget of calls, shared by the workers: each call takes a number first."""
from __future__ import annotations

import threading


class Budget:
    def __init__(self, calls: int) -> None:
        self.calls = calls
        self._lock = threading.Lock()
        self._next = 0
        self.closed = threading.Event()  # set to end the run early (the global timeout)

    def take(self) -> int | None:
        """The number of the next call (0-based), None when the budget is spent or closed."""
        with self._lock:
            if self.closed.is_set() or self._next >= self.calls:
                return None
            self._next += 1
            return self._next - 1

    def handed_out(self) -> int:
        with self._lock:
            return self._next
