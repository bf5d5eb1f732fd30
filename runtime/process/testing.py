"""Fakes of the agent's seams to its helper processes, for unit tests without root.

FakeMonitors "forks" a pod monitor and its pause as real, harmless processes (sleep), so that a test
sees them killed and reaped exactly as it would the real ones.
"""
from __future__ import annotations

import socket
import subprocess
from typing import Any

from runtime.errors import PycridError, Unavailable
from runtime.linux.proc import start_time
from runtime.process.execspec import ExecSpec
from runtime.process.initspec import InitSpec
from runtime.process.monitorclient import Started
from runtime.sandbox.namespaces import PinSpec


def _sleeper() -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(["sleep", "60"])
    return process, start_time(process.pid) or 0


class FakeMonitor:
    def __init__(self, owner: FakeMonitors, sandbox_id: str) -> None:
        self._owner = owner
        self.sandbox_id = sandbox_id

    def ping(self) -> dict[str, Any]:
        return {"pid": self._owner.processes[self.sandbox_id].pid, "build": "fake"}

    def start_pause(self, spec: dict[str, Any]) -> tuple[int, int]:
        self._owner.pause_specs.append(spec)
        process, started = _sleeper()
        self._owner.pauses.append(process)
        if self._owner.pause_error is not None:
            raise self._owner.pause_error
        return process.pid, started

    def start(self, spec: InitSpec, timeout: float) -> Started:
        raise Unavailable("FakeMonitor starts no containers")

    def prepare(self, spec: InitSpec, timeout: float) -> int:
        raise Unavailable("FakeMonitor prepares no containers")

    def discard(self, container_id: str) -> None:
        pass

    def exec(self, spec: ExecSpec, stdio: tuple[int, int, int]) -> tuple[int, socket.socket]:
        raise Unavailable("FakeMonitor runs no execs")

    def attach(self, container_id: str, streams: list[str], fds: tuple[int, ...]) -> None:
        raise Unavailable("FakeMonitor attaches nothing")

    def resize(self, container_id: str, rows: int, columns: int) -> None:
        raise Unavailable("FakeMonitor has no terminals")

    def reopen_log(self, container_id: str) -> None:
        pass

    def shutdown(self) -> None:
        process = self._owner.processes.get(self.sandbox_id)
        if process is None or process.poll() is not None:
            raise Unavailable(f"monitor of {self.sandbox_id} is gone")
        for p in (process, *self._owner.pauses):
            p.kill()
            p.wait()

    def upgrade(self) -> None:
        self._owner.upgraded.append(self.sandbox_id)


class FakeMonitors:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.pauses: list[subprocess.Popen[bytes]] = []
        self.pause_specs: list[dict[str, Any]] = []
        self.pins: list[PinSpec] = []  # what each spawned monitor was to pin
        self.pause_error: PycridError | None = None  # the pause starts, but its report is lost
        self.spawn_error: PycridError | None = None  # the monitor dies before it reports
        self.upgraded: list[str] = []

    def spawn(self, sandbox_id: str, run_dir: str, pins: PinSpec) -> tuple[int, int]:
        self.pins.append(pins)
        if self.spawn_error is not None:
            raise self.spawn_error
        process, started = _sleeper()
        self.processes[sandbox_id] = process
        return process.pid, started

    def connect(self, sandbox_id: str, run_dir: str) -> FakeMonitor:
        return FakeMonitor(self, sandbox_id)

    def kill_all(self) -> None:
        for p in (*self.processes.values(), *self.pauses):
            p.kill()
            p.wait()


class FakeWatches:
    """The Supervisor's watch, recorded: key → (pid, start time)."""

    def __init__(self) -> None:
        self.watched: dict[str, tuple[int, int]] = {}

    def watch(self, key: str, pid: int, started: int) -> bool:
        self.watched[key] = (pid, started)
        return True

    def unwatch(self, key: str) -> None:
        self.watched.pop(key, None)
