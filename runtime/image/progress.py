"""Progress of one pull: logged as it goes, and the watchdog that fails a pull that stopped moving."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from runtime.errors import DeadlineExceeded

log = logging.getLogger(__name__)


class PullProgress:
    """Workers report bytes; the pulling thread calls check() and gets DeadlineExceeded once no
    byte has moved for ``stall_timeout`` seconds (containerd's image_pull_progress_timeout)."""

    def __init__(self, what: str, layers: int, total_bytes: int, stall_timeout: float,
                 clock: Callable[[], float], log_interval: float = 10.0) -> None:
        self._what = what
        self._layers = layers
        self._total = total_bytes
        self._stall_timeout = stall_timeout
        self._clock = clock
        self._log_interval = log_interval
        self._lock = threading.Lock()
        self._bytes = 0
        self._unpacked = 0
        self._done = 0
        self._last_progress = self._last_log = clock()
        self._cancelled = threading.Event()

    def downloaded(self, n: int) -> None:
        """Counts ``n`` bytes fetched; raises in a worker once the pull was cancelled, to stop it."""
        self._moved(n, 0)

    def unpacked(self, n: int) -> None:
        """Counts ``n`` uncompressed bytes unpacked; raises once the pull was cancelled."""
        self._moved(0, n)

    def _moved(self, fetched: int, unpacked: int) -> None:
        self.stop_if_cancelled()
        with self._lock:
            self._bytes += fetched
            self._unpacked += unpacked
            self._last_progress = self._clock()

    def stop_if_cancelled(self) -> None:
        """Raises once the pull was cancelled, as downloaded() does, without counting progress."""
        if self._cancelled.is_set():
            raise DeadlineExceeded(f"{self._what}: pull cancelled")

    def layer_done(self) -> None:
        with self._lock:
            self._done += 1
            self._last_progress = self._clock()

    def cancel(self) -> None:
        self._cancelled.set()

    def check(self) -> None:
        now = self._clock()
        with self._lock:
            idle = now - self._last_progress
            due = now - self._last_log >= self._log_interval
            if due:
                self._last_log = now
        if idle >= self._stall_timeout:
            self.cancel()
            raise DeadlineExceeded(f"{self._what}: no progress for {idle:.0f}s ({self._summary()})")
        if due:
            log.info("%s: %s", self._what, self._summary())

    def finish(self) -> None:
        log.info("%s: %s", self._what, self._summary())

    def _summary(self) -> str:
        with self._lock:
            return (f"{self._done}/{self._layers} layers, downloaded {self._bytes} of "
                    f"{self._total} bytes, unpacked {self._unpacked} bytes")
