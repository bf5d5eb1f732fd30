"""A container's end, folded into its record once: from the monitor's exit file, or, when the
monitor that would write it is gone, as a lost exit (255). The agent's pidfd watch of each running
init tells us when to look; status calls, stops and a failing pod look too."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.cgroups.manager import CgroupManager
from runtime.container.exits import ExitCollector, exit_key
from runtime.container.record import Container, State, exit_reason
from runtime.errors import NotFound
from runtime.events.model import EventKind, Publisher
from runtime.linux.pidfd import wait_gone
from runtime.linux.proc import is_alive
from runtime.sandbox.processes import Watches
from runtime.store.records import RecordStore

EXIT_FILE_GRACE = 2.0  # the monitor writes the exit file right after reaping init


class ExitTracker:
    def __init__(self, store: RecordStore[Container], cgroups: CgroupManager, clock: Callable[[], int],
                 events: Publisher, watches: Watches) -> None:
        self._store = store
        self._cgroups = cgroups
        self._clock = clock
        self._events = events
        self._watches = watches  # the agent's pidfd watch: each running init, "container:<id>"
        self._pending: dict[str, float] = {}  # container id → when its init was first seen gone
        self._exits = ExitCollector(self._settle)

    def refresh(self, container_id: str) -> Container:
        """The record with the monitor's exit file (or a vanished process) folded in."""
        c = self._store.get(container_id)
        if c.state != State.RUNNING:
            return c
        exit_record = read_exit(c.spec.exit_file)
        if exit_record is None:
            if is_alive(c.pid, c.pid_start):
                return c
            # The monitor writes the exit file right after reaping init; give it a moment before
            # deciding the exit was lost (the monitor died with the container).
            first_seen = self._pending.setdefault(c.id, time.monotonic())
            if time.monotonic() - first_seen < EXIT_FILE_GRACE:
                return c
            exit_record = {"exit_code": 255, "signal": 0, "finished_at": self._clock(),
                           "lost": "the pod monitor that watched it is gone; its exit code is unknown"}
        self._pending.pop(c.id, None)
        oom = self._cgroups.oom_events(c.cgroup) > c.oom_kills_before
        return self.record(c.id, lambda r: replace(
            r, finished_at=exit_record["finished_at"], exit_code=exit_record["exit_code"],
            reason=exit_reason(exit_record["exit_code"], exit_record["signal"], oom),
            message=exit_record.get("lost", "")))

    def record(self, container_id: str, change: Callable[[Container], Container]) -> Container:
        """Records the end of a container once: status calls, the exit collector and a failing
        pod may all see it at a time; the first to record it publishes STOPPED."""
        ended = False

        def once(r: Container) -> Container:
            nonlocal ended
            if r.finished_at:
                return r
            ended = True
            return change(r)

        c = self._store.update(container_id, once)
        if ended:
            self._events.publish(EventKind.STOPPED, c.id, c.sandbox_id)
        return c

    def lost(self, container_id: str, why: str) -> Container:
        """Records an exit no monitor will write: code 255 and ``why``."""
        return self.record(container_id, lambda r: replace(r, finished_at=self._clock(), exit_code=255,
                                                           reason="Error", message=why))

    def exited(self, container_id: str) -> None:
        """The agent's watch saw the container's init die: its exit is recorded (and published)
        as soon as the monitor has written it."""
        self._exits.collect(container_id)

    def watch(self, c: Container) -> None:
        if not self._watches.watch(exit_key(c.id), c.pid, c.pid_start):
            self._exits.collect(c.id)  # gone already

    def unwatch(self, container_id: str) -> None:
        self._watches.unwatch(exit_key(container_id))

    def wait(self, c: Container, timeout: float) -> bool:
        """True once the container's exit is recorded; False if its init still runs after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        wait_gone(c.pid, c.pid_start, timeout)
        grace = max(deadline, time.monotonic() + EXIT_FILE_GRACE)
        while time.monotonic() < grace:
            if self.refresh(c.id).state != State.RUNNING:
                return True
            if is_alive(c.pid, c.pid_start) and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return self.refresh(c.id).state != State.RUNNING

    def _settle(self, container_id: str) -> bool:
        try:
            return self.refresh(container_id).state != State.RUNNING
        except NotFound:
            return True


def read_exit(path: str) -> dict[str, Any] | None:
    try:
        record = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return None
    return record if isinstance(record, dict) else None
