"""Which calls may take a handler thread, and for how long the caller waits: the two things that
keep slow calls from starving quick ones.

A pull, a stop with a long grace period or a CNI set-up can each hold a gRPC handler thread for a
long time, and the sync server has a fixed pool of them. Slow calls therefore share a budget smaller
than the pool: past it they are refused at once with RESOURCE_EXHAUSTED (the kubelet retries), so
Status, List* and *Status always find a free thread.

The caller's deadline reaches the work through ``remaining()``: a start or a stop never outlives
the client that asked for it.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from runtime.errors import ResourceExhausted

SLOW_CALLS = frozenset({
    "PullImage", "RemoveImage", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "CreateContainer",
    "StartContainer", "StopContainer", "RemoveContainer", "ExecSync", "UpdateContainerResources",
    "ReopenContainerLog", "UpdatePodSandboxResources", "CheckpointContainer",
})
QUICK_RESERVE = 8  # handler threads that slow calls never take
NO_DEADLINE = 1e9  # seconds: more than any real deadline

_remaining: contextvars.ContextVar[float | None] = contextvars.ContextVar("remaining", default=None)


def remaining() -> float | None:
    """Seconds the current call's client still waits; None when it set no deadline."""
    return _remaining.get()


def within_deadline(seconds: float) -> float:
    """``seconds``, or less if the caller will not wait that long."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left))


class Admission:
    def __init__(self, workers: int) -> None:
        self.slow_limit = max(1, workers - QUICK_RESERVE)
        self._slots = threading.BoundedSemaphore(self.slow_limit)

    @contextlib.contextmanager
    def call(self, method: str, time_remaining: float | None) -> Iterator[None]:
        # "No deadline" is no grpc-timeout, or an enormous one (some clients send ~99999999 hours).
        token = _remaining.set(time_remaining if time_remaining is not None and time_remaining < NO_DEADLINE
                               else None)
        try:
            if method not in SLOW_CALLS:
                yield
                return
            if not self._slots.acquire(blocking=False):
                raise ResourceExhausted(f"{self.slow_limit} slow calls (pulls, starts, stops, execs) are in "
                                        "progress already; try again")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            _remaining.reset(token)
