"""Thin wrappers that let the metrics see events without touching the runtime's internals.

The composition root (cri/app.py) hands these to the CRI services instead of the managers they
wrap; everything not intercepted goes straight through.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from metrics.own import OwnMetrics, StopRequests
from runtime.container.manager import ContainerManager
from runtime.image import Credentials, Image, ImageManager

M = TypeVar("M")


class _Delegating(Generic[M]):
    def __init__(self, inner: M) -> None:
        self._inner = inner

    # Any: whatever the wrapped manager has; the CRI services' Protocols (cri/managers.py) say
    # which of its methods they use, and mypy checks the intercepted ones below against them.
    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ObservedImages(_Delegating[ImageManager]):
    """An ImageManager whose pulls are counted, timed and sized."""

    def __init__(self, inner: ImageManager, own: OwnMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self._own = own
        self._clock = clock

    def pull(self, ref: str, auth: Credentials | None = None, pinned: bool = False) -> Image:
        try:
            before = self._inner.status(ref)
        except Exception:  # noqa: BLE001 - a bad reference fails in pull() with its own error
            before = None
        started = self._clock()
        try:
            image = self._inner.pull(ref, auth, pinned)
        except BaseException:
            self._own.observe_pull(False, self._clock() - started, 0)
            raise
        fetched = 0 if before is not None and before.id == image.id else image.size
        self._own.observe_pull(True, self._clock() - started, fetched)
        return image


class ObservedContainers(_Delegating[ContainerManager]):
    """A ContainerManager that remembers which containers it was asked to stop, so an exit can be
    told apart from a crash (pycrid_container_unexpected_exits_total)."""

    def __init__(self, inner: ContainerManager, stops: StopRequests) -> None:
        super().__init__(inner)
        self._stops = stops

    def _mark(self, container_id: str) -> str:
        c = self._inner.find(container_id)
        if c is None:
            return ""
        self._stops.container(c.id)
        return c.id

    def stop(self, container_id: str, timeout: int) -> None:
        self._mark(container_id)
        self._inner.stop(container_id, timeout)

    def remove(self, container_id: str) -> None:
        full_id = self._mark(container_id)
        self._inner.remove(container_id)
        self._stops.removed(container_id=full_id)

    def stop_in_pod(self, sandbox_id: str) -> None:
        self._stops.pod(sandbox_id)
        self._inner.stop_in_pod(sandbox_id)

    def remove_in_pod(self, sandbox_id: str) -> None:
        self._stops.pod(sandbox_id)
        self._inner.remove_in_pod(sandbox_id)
        self._stops.removed(sandbox_id=sandbox_id)
