"""A fork server and one pod monitor for real (no agent; pod namespaces pinned only when a test
gives a PinSpec), and container specs over the host-tools rootfs (hostroot.py): what the
process-level integration tests drive."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.linux import proc
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process.client import ForkServer, connect_or_start
from runtime.process.initspec import InitSpec
from runtime.process.monitorclient import MonitorFactory, PodMonitor
from runtime.sandbox.namespaces import PinSpec, unpin
from tests.reaping import lasting_zombies
from tests.timescale import TIMEOUT_SCALE


class PodHarness:
    def __init__(self, base: Path, lower: Path, pins: PinSpec | None = None,
                 start_timeout: float = 10.0 * TIMEOUT_SCALE) -> None:
        """``start_timeout``: for the fork server to answer."""
        self.base = base
        self.lower = lower
        self.forkserver: ForkServer = connect_or_start(str(base / "fork.sock"), str(base / "fork.log"),
                                                       timeout=start_timeout)
        self.run_dir = base / "pod"
        self.run_dir.mkdir(exist_ok=True)
        self.pins = pins or PinSpec("p1", {})
        self.monitor_pid, _ = MonitorFactory(self.forkserver).spawn("p1", str(self.run_dir), self.pins)
        self.monitor = PodMonitor("p1", str(self.run_dir / "monitor.sock"))

    def spec(self, container_id: str, args: tuple[str, ...], **changes: Any) -> InitSpec:
        base = self.base / container_id
        for d in ("upper", "work", "rootfs", "logs", "state"):
            (base / d).mkdir(parents=True, exist_ok=True)
        spec = InitSpec(id=container_id, args=args, env=("GREETING=hi",), cwd="/", lowerdirs=(str(self.lower),),
                        upperdir=str(base / "upper"), workdir=str(base / "work"), rootfs=str(base / "rootfs"),
                        hostname="testbox", log_path=str(base / "logs" / f"{container_id}.log"),
                        exit_file=str(base / "exit.json"), state_dir=str(base / "state"),
                        seccomp="RuntimeDefault", capabilities=("CAP_CHOWN", "CAP_KILL"), no_new_privs=True)
        return replace(spec, **changes)

    def start(self, spec: InitSpec, timeout: float = 30 * TIMEOUT_SCALE) -> int:
        return self.monitor.start(spec, timeout).pid

    def close(self) -> tuple[int, ...]:
        """Ends the monitor (if alive) and the fork server; the zombies that were left."""
        server_pid = self.forkserver.ping()
        try:
            self.monitor.shutdown()
        except Exception:  # noqa: BLE001 - a test may have killed it
            pass
        deadline = time.monotonic() + 10
        while (stat := proc.read_stat(self.monitor_pid)) is not None and stat.state != "Z":
            assert time.monotonic() < deadline, "the pod monitor outlived its shutdown"
            time.sleep(0.02)
        zombies = lasting_zombies(server_pid)
        self.forkserver.shutdown()
        unpin([*self.pins.pins.values(), self.pins.shm], LinuxSyscalls())
        return zombies


def wait_until(predicate: Callable[[], object], timeout: float = 5.0 * TIMEOUT_SCALE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def wait_exit(spec: InitSpec, timeout: float = 10 * TIMEOUT_SCALE) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not os.path.exists(spec.exit_file):
        assert time.monotonic() < deadline, "container did not exit"
        time.sleep(0.02)
    record: dict[str, Any] = json.loads(Path(spec.exit_file).read_text())
    return record


def log_lines(spec: InitSpec) -> list[tuple[str, ...]]:
    lines = Path(spec.log_path).read_text().splitlines()
    return [tuple(line.split(" ", 3)[1:]) for line in lines]
