"""What a handler knows of its call: how long the client still waits, and the call's end (the
client went, the deadline passed, the server stops) as callbacks that wake a waiting stream."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NoReturn, Protocol

from cri.rpc.status import RpcAbort, StatusCode


class CallContext(Protocol):
    def time_remaining(self) -> float | None: ...

    def add_callback(self, callback: Callable[[], None]) -> None: ...

    def abort(self, code: StatusCode, message: str) -> NoReturn: ...


class Call:
    """One call's context (satisfies CallContext); ``deadline`` is on the monotonic clock."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._ended = False

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def add_callback(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._ended:
                self._callbacks.append(callback)
                return
        callback()  # already over: what it would wake must not wait

    def abort(self, code: StatusCode, message: str) -> NoReturn:
        raise RpcAbort(code, message)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> None:
        """Runs the callbacks once, whichever of the call's ends comes first."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
