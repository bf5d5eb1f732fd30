"""Containers that end on their own, noticed as they end rather than at the next status call.

The agent watches each running container's init by pidfd, with the Supervisor's watch over its
helpers (key "container:<id>"). A death is not yet an exit record: the pod monitor writes the
exit file once it has reaped init and drained the container's output. So a death only marks the
container, and one thread folds the marked ones' exit files into their records as they appear
(ContainerManager.refresh, which publishes the STOPPED event). refresh gives up on a missing exit
file after its own grace (the monitor died too: exit code 255), so every mark is settled.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

KEY_PREFIX = "container:"
POLL_SECONDS = 0.02
log = logging.getLogger(__name__)


def exit_key(container_id: str) -> str:
    return KEY_PREFIX + container_id


def watched_container(key: str) -> str:
    """The container a watch key names; "" for a helper's key ("monitor:<id>", "pause:<id>")."""
    return key.removeprefix(KEY_PREFIX) if key.startswith(KEY_PREFIX) else ""


class ExitCollector:
    def __init__(self, settle: Callable[[str], bool], poll: float = POLL_SECONDS) -> None:
        """``settle(id)`` folds the container's exit if it is known by now; True once the
        container no longer runs (or no longer exists)."""
        self._settle = settle
        self._poll = poll
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._busy = False  # a collecting thread runs; it exits when nothing is pending

    def collect(self, container_id: str) -> None:
        with self._lock:
            self._pending.add(container_id)
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, name="exits", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                ids = list(self._pending)
            for container_id in ids:
                try:
                    done = self._settle(container_id)
                except Exception:  # noqa: BLE001 - one container's failure must not stall the others
                    log.exception("container %s: recording its exit failed", container_id[:12])
                    done = True
                if done:
                    with self._lock:
                        self._pending.discard(container_id)
            with self._lock:
                if not self._pending:
                    self._busy = False
                    return
            time.sleep(self._poll)
