"""Single-use, unguessable, short-lived tokens: what an Exec, Attach or PortForward RPC hands out in
its URL, as the kubelet's streaming library does (a token is 128 random bits, valid for one request
and one minute). The cache is bounded: a flood of RPCs whose URLs are never used fills it, and new
ones are refused until old ones expire."""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from runtime.errors import ResourceExhausted

T = TypeVar("T")
MAX_PENDING = 1000


@dataclass(frozen=True)
class Pending(Generic[T]):
    request: T
    expires: float


class Tokens(Generic[T]):
    def __init__(self, lifetime: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 limit: int = MAX_PENDING) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: dict[str, Pending[T]] = {}

    def issue(self, request: T) -> str:
        now = self._clock()
        with self._lock:
            self._pending = {t: p for t, p in self._pending.items() if p.expires > now}
            if len(self._pending) >= self._limit:
                raise ResourceExhausted(f"{self._limit} streaming requests are waiting to be used already")
            token = secrets.token_urlsafe(16)
            self._pending[token] = Pending(request, now + self._lifetime)
        return token

    def take(self, token: str) -> T | None:
        """The request the token stands for, once: None for an unknown, used or expired token."""
        with self._lock:
            pending = self._pending.pop(token, None)
        if pending is None or pending.expires <= self._clock():
            return None
        return pending.request
