"""Disk usage of writable layers, walked at most once per ``max_age_s`` per layer.

Every other value of a sample is read when it is asked for. This one is a walk of the layer's
tree, whose cost grows with the files the container wrote rather than with the number of
containers: one container that writes many small files would otherwise make every scrape and
every stats RPC of the node slow. cAdvisor refreshes it every minute and containerd every 10 s,
both from a background loop; here there is no thread: an answer older than ``max_age_s`` is
walked again by the next caller. Answers of layers nobody asked about for a while are dropped.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from runtime.fsusage import TreeUsage, tree_usage

MAX_AGE_S = 10.0


class RecentTreeUsage:
    def __init__(self, measure: Callable[[str], TreeUsage] = tree_usage, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._measure = measure
        self._max_age_s = max_age_s
        self._clock = clock
        self._recent: dict[str, tuple[float, TreeUsage]] = {}
        self._next_prune = clock() + max_age_s
        self._lock = threading.Lock()

    def __call__(self, path: str) -> TreeUsage:
        now = self._clock()
        with self._lock:
            if now >= self._next_prune:
                self._recent = {p: v for p, v in self._recent.items() if now - v[0] < self._max_age_s}
                self._next_prune = now + self._max_age_s
            known = self._recent.get(path)
        if known is not None and now - known[0] < self._max_age_s:
            return known[1]
        usage = self._measure(path)  # outside the lock: walks of different layers do not wait
        with self._lock:
            self._recent[path] = (now, usage)
        return usage
