"""The run's budget of calls, shared by the workers: each call takes a number first.

The chaos thread may hold the budget at a call number: workers asking for that number or a later
one wait until it lets go, so a kill lands at its seeded point of the run however fast the calls go.
"""
from __future__ import annotations

import threading


class Budget:
    def __init__(self, calls: int) -> None:
        self.calls = calls
        self._cond = threading.Condition()
        self._next = 0
        self._hold: int | None = None
        self._closed = False

    def take(self) -> int | None:
        """The number of the next call (0-based), None when the budget is spent or closed."""
        with self._cond:
            while not self._closed and self._hold is not None and self._next >= self._hold:
                self._cond.wait()
            if self._closed or self._next >= self.calls:
                return None
            self._next += 1
            return self._next - 1

    def hold_at(self, call: int) -> None:
        with self._cond:
            self._hold = call

    def release(self) -> None:
        with self._cond:
            self._hold = None
            self._cond.notify_all()

    def held(self) -> bool:
        """True once every number before the hold point is handed out (or all of them are)."""
        with self._cond:
            return self._hold is not None and self._next >= min(self._hold, self.calls)

    def close(self) -> None:
        """End the run early (the global timeout): every waiting and later take() gets None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def handed_out(self) -> int:
        with self._cond:
            return self._next
