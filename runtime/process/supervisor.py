"""The agent's watch over its helper processes.

One thread waits on a pidfd per helper: the fork server, every pod's monitor and every pause. When
the fork server dies it is started again at once (new pods and pulls need it; running pods do not);
when a pod's monitor or pause dies, the callback fails that pod (its sandbox goes NotReady and its
containers are ended, as containerd does when a shim dies). A pidfd names one process for good, so
a pid reused after an exit is never mistaken for the helper. The same watch tells the container
manager when a container's init dies (keys "container:<id>", not counted as helper deaths).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.errors import Unavailable
from runtime.linux.poll import wait_readable
from runtime.linux.proc import start_time
from runtime.process import client
from runtime.process.client import ForkServer

RETRY_SECONDS = 1.0  # between attempts to start a fork server that failed to start
HELPER_KINDS = ("forkserver", "monitor", "pause")
log = logging.getLogger(__name__)
Died = Callable[[str], None]  # called with the key a watched helper was registered under


@dataclass(frozen=True)
class HelperState:
    up: bool  # the fork server answers
    message: str = ""
    deaths: tuple[tuple[str, int], ...] = ()  # (helper kind, deaths seen) for each kind


class Supervisor:
    def __init__(self, forkserver: ForkServer, log_path: str, on_death: Died) -> None:
        self.forkserver = forkserver
        self._log_path = log_path
        self._on_death = on_death
        self._lock = threading.Lock()
        self._watched: dict[int, str] = {}  # pidfd → key
        self._keys: dict[str, int] = {}  # key → pidfd
        # Unwatched pidfds, closed by the watch thread only: closing one under its poll() could
        # let the number be reused and a stranger's descriptor be watched (or closed) instead.
        self._retired: list[int] = []
        self._forkserver_fd = -1
        self._down_since = 0.0
        self._down_reason = ""
        self._deaths = dict.fromkeys(HELPER_KINDS, 0)
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._forkserver_fd = self._open(self.forkserver.ping())
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)

    def watch(self, key: str, pid: int, started: int) -> bool:
        """Watches ``pid`` (started at ``started``, clock ticks after boot) under ``key``; False
        when it is already gone (the caller handles that death itself)."""
        fd = self._open(pid, started)
        if fd < 0:
            return False
        with self._lock:
            old = self._keys.pop(key, None)
            if old is not None:
                self._watched.pop(old, None)
                self._retired.append(old)
            self._watched[fd], self._keys[key] = key, fd
        os.write(self._wake_w, b"x")
        return True

    def unwatch(self, key: str) -> None:
        """Stops watching (the helper is about to be ended on purpose)."""
        with self._lock:
            fd = self._keys.pop(key, None)
            if fd is not None:
                self._watched.pop(fd, None)
                self._retired.append(fd)
        os.write(self._wake_w, b"x")

    def state(self) -> HelperState:
        with self._lock:
            deaths = tuple(self._deaths.items())
            if self._forkserver_fd >= 0:
                return HelperState(True, deaths=deaths)
            return HelperState(False, f"the fork server is down since {time.ctime(self._down_since)}: "
                                      f"{self._down_reason}", deaths)

    def wait_forkserver(self, timeout: float = 3.0) -> bool:
        """After a request found the fork server gone: whether a new one answers within
        ``timeout`` (the watch thread sees the death by pidfd and restarts it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.forkserver.ping()
                return True
            except Unavailable:
                time.sleep(0.02)
        return False

    def _open(self, pid: int, started: int | None = None) -> int:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return -1
        if started is not None and start_time(pid) != started:  # checked after the pidfd pins it
            os.close(fd)
            return -1
        return fd

    def _run(self) -> None:
        while not self._stopped:
            with self._lock:
                fds = [self._wake_r, *self._watched, *((self._forkserver_fd,) if self._forkserver_fd >= 0 else ())]
            timeout = None if self._forkserver_fd >= 0 else RETRY_SECONDS
            ready = wait_readable(fds, timeout)
            with self._lock:
                retired, self._retired = self._retired, []
            for fd in ready:
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                elif fd == self._forkserver_fd:
                    self._forkserver_died()
                elif fd not in retired:
                    self._helper_died(fd)
            for fd in retired:
                os.close(fd)
            if self._forkserver_fd < 0 and not self._stopped:
                self._restart_forkserver()

    def _helper_died(self, fd: int) -> None:
        with self._lock:
            key = self._watched.pop(fd, None)
            if key is None:
                return  # unwatched meanwhile: closed with the retired ones
            del self._keys[key]
        os.close(fd)
        kind = key.partition(":")[0]
        if kind in HELPER_KINDS:  # the rest are containers' inits, watched for their exits
            log.warning("helper %s died", key)
            with self._lock:
                self._deaths[kind] += 1
        try:
            self._on_death(key)
        except Exception:  # noqa: BLE001 - the watch must go on for every other helper
            log.exception("handling the death of %s failed", key)

    def _forkserver_died(self) -> None:
        with self._lock:
            os.close(self._forkserver_fd)
            self._forkserver_fd = -1
            self._down_since, self._down_reason = time.time(), "it exited"
            self._deaths["forkserver"] += 1
        if self.forkserver.process is not None:
            self.forkserver.process.poll()  # ours: reap it
        log.warning("the fork server died; starting a new one")

    def _restart_forkserver(self) -> None:
        try:
            fresh = client.start(self.forkserver.path, self._log_path, self.forkserver.extra_args)
            pid = fresh.ping()
            fd = self._open(pid)
        except Exception as e:  # noqa: BLE001 - reported by state() until a retry works
            with self._lock:
                self._down_reason = f"restarting it failed: {e}"
            log.error("restarting the fork server failed: %s", e)
            return
        with self._lock:
            self.forkserver.process = fresh.process
            self._forkserver_fd = fd
        log.info("fork server restarted as pid %d", pid)
