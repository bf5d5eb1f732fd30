"""`crictl events` against a test pycrid: the ContainerEventResponses it prints, parsed as they
come (crictl writes one indented JSON document per event)."""
from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.daemon import Daemon

Event = dict[str, Any]


class EventWatch:
    def __init__(self, daemon: Daemon) -> None:
        env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=daemon.endpoint)
        self.process = subprocess.Popen(["crictl", "events", "-o", "json"], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.seen: list[Event] = []
        self._arrived: queue.Queue[Event] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        document: list[str] = []
        for line in self.process.stdout:
            document.append(line)
            if line.rstrip("\n") == "}":  # the end of one top-level document
                self._arrived.put(json.loads("".join(document)))
                document = []

    def until(self, done: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        """Collects events (into ``seen``) until one is ``done``; returns that one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._arrived.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such event within {timeout}s; seen: {summary(self.seen)}") from None
            self.seen.append(event)
            if done(event):
                return event

    def drain(self, seconds: float) -> list[Event]:
        """What else arrives within ``seconds``."""
        deadline, more = time.monotonic() + seconds, []
        while (left := deadline - time.monotonic()) > 0:
            try:
                more.append(self._arrived.get(timeout=left))
            except queue.Empty:
                break
        self.seen += more
        return more

    def close(self) -> str:
        """Ends crictl; its stderr."""
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        return err


def is_event(subject: str, kind: str) -> Callable[[Event], bool]:
    return lambda e: e["containerId"] == subject and e["containerEventType"] == f"CONTAINER_{kind}_EVENT"


def summary(events: list[Event], ids: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(subject, kind) per event; subjects named by ``ids`` (id → name) when given."""
    names = ids or {}
    return [(names.get(e["containerId"], e["containerId"][:12]),
             e["containerEventType"].removeprefix("CONTAINER_").removesuffix("_EVENT")) for e in events
            if not ids or e["containerId"] in ids]


def status_of(event: Event, container_id: str) -> Event | None:
    return next((c for c in event.get("containersStatuses", ()) if c["id"] == container_id), None)


def wait_streams_open(daemon: Daemon, count: int, timeout: float = 10.0) -> None:
    """Until pycrid logged ``count`` event streams open (so that no event goes past a watcher)."""
    deadline = time.monotonic() + timeout
    while not re.search(rf"event stream opened \({count} open", daemon.log_path.read_text()):
        assert time.monotonic() < deadline, f"{count} event streams never opened"
        time.sleep(0.05)
