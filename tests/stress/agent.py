"""The pycrid under test (tests/e2e/daemon.py), killed and restarted on the same base dir, with the
windows during which it, or a helper it depends on, was down on purpose."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.e2e.daemon import Daemon, start
from tests.stress.cri_client import RECONNECT_SECONDS
from tests.stress.verdicts import Window


class Agent:
    def __init__(self, base: Path, registry: str) -> None:
        self.base = base
        self._daemon = start(base, registry)
        self._lock = threading.Lock()
        self._windows: list[Window] = []
        self.up = threading.Event()
        self.up.set()

    @property
    def daemon(self) -> Daemon:
        with self._lock:
            return self._daemon

    def windows(self) -> list[Window]:
        with self._lock:
            return list(self._windows)

    def outage(self, start: float, end: float, what: str) -> None:
        with self._lock:
            self._windows.append(Window(start, end, what))

    def kill_and_restart(self, down_seconds: float) -> None:
        """SIGKILL `pycrid serve`, stay down a while, start it again with the same config. The
        outage lasts until it answers again, plus the client's reconnect backoff."""
        self.up.clear()
        killed = time.monotonic()
        old = self.daemon
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(10)
        time.sleep(down_seconds)
        try:
            daemon = start(self.base)
        finally:
            self.outage(killed, time.monotonic() + RECONNECT_SECONDS + 0.5, "agent killed")
        with self._lock:
            self._daemon = daemon
        self.up.set()

    def restart(self) -> None:
        """A clean stop and start (SIGTERM): used to bring back a dead fork server before the
        final clean-up, since today only the agent's start-up starts one."""
        self.up.clear()
        stopped = time.monotonic()
        self.daemon.stop()
        daemon = start(self.base)
        self.outage(stopped, time.monotonic() + RECONNECT_SECONDS + 0.5, "agent restarted")
        with self._lock:
            self._daemon = daemon
        self.up.set()
