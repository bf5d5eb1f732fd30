"""A pod's processes, seen from the agent: its monitor (one per pod, forked by the fork server) and,
for a pod that shares one PID namespace, its pause process (started by the monitor).

Both are watched by the Supervisor under "monitor:<id>" and "pause:<id>"; the sandbox manager
decides what their death means for the pod.
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Protocol

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.resources import Resources
from runtime.errors import PycridError, Unavailable
from runtime.linux.pidfd import open_pidfd, send_signal, wait_gone
from runtime.linux.poll import wait_readable
from runtime.linux.proc import start_time
from runtime.process.build import build_id
from runtime.process.monitorclient import MonitorClient, Monitors
from runtime.sandbox.infra import InfraSource
from runtime.sandbox.namespaces import PinSpec
from runtime.sandbox.record import Sandbox
from runtime.sandbox.userns import pause_id

EXIT_WAIT = 10.0  # for a monitor told to shut down: it kills what is left and waits for it
log = logging.getLogger(__name__)


def _pod(sandbox: Sandbox) -> str:
    return f"pod {sandbox.config.namespace}/{sandbox.config.name} (sandbox {sandbox.id[:12]})"


def monitor_key(sandbox_id: str) -> str:
    return f"monitor:{sandbox_id}"


def pause_key(sandbox_id: str) -> str:
    return f"pause:{sandbox_id}"


@dataclass(frozen=True)
class Started:
    pid: int
    start_time: int


class Watches(Protocol):
    """The Supervisor's watch over helper processes (a fake in runtime/process/testing.py)."""

    def watch(self, key: str, pid: int, started: int) -> bool: ...

    def unwatch(self, key: str) -> None: ...


class PodProcesses:
    def __init__(self, monitors: Monitors, supervisor: Watches, cgroups: CgroupManager, infra: InfraSource,
                 run_dir: str) -> None:
        self._monitors = monitors
        self._run_dir = run_dir  # where each pod's run dir (and its monitor's socket) is
        self._supervisor = supervisor
        self._cgroups = cgroups
        self._infra = infra

    def monitor(self, sandbox: Sandbox) -> MonitorClient:
        return self._monitors.connect(sandbox.id, sandbox.paths.dir)

    def spawn_monitor(self, sandbox: Sandbox, pins: PinSpec) -> Started:
        """Forks the pod's monitor, which makes and pins the pod's namespaces first."""
        try:
            pid, started = self._monitors.spawn(sandbox.id, sandbox.paths.dir, pins)
        except PycridError as e:  # the request names the pod, not yet its id
            raise type(e)(f"{_pod(sandbox)}: starting its monitor: {e}") from e
        if not self._supervisor.watch(monitor_key(sandbox.id), pid, started):
            raise Unavailable(f"{_pod(sandbox)}: its monitor {pid} exited at once")
        return Started(pid, started)

    def start_pause(self, sandbox: Sandbox, pins: dict[str, str]) -> Started:
        root = os.path.join(sandbox.paths.dir, "pause")
        os.makedirs(root, mode=0o555, exist_ok=True)
        infra = self._infra.get()
        image = {"lowerdirs": list(infra.lowerdirs), "argv": list(infra.argv)} if infra else {}
        self._cgroups.create(sandbox.cgroup, Resources())
        try:
            pid, started = self.monitor(sandbox).start_pause({"id": sandbox.id, "root": root, "namespaces": pins,
                                                              "cgroup": sandbox.cgroup, **image,
                                                              "user": pause_id(sandbox.config.userns)})
        except PycridError as e:
            raise type(e)(f"{_pod(sandbox)}: starting its pause: {e}") from e
        self._supervisor.watch(pause_key(sandbox.id), pid, started)  # dead already: the callback is ours
        return Started(pid, started)

    def watch(self, sandbox: Sandbox) -> str:
        """After an agent restart: watches the pod's processes again; what died meanwhile, or ""."""
        if sandbox.monitor_pid and not self._supervisor.watch(monitor_key(sandbox.id), sandbox.monitor_pid,
                                                              sandbox.monitor_start):
            return f"its monitor (pid {sandbox.monitor_pid}) died while pycrid was down"
        if sandbox.pause_pid and not self._supervisor.watch(pause_key(sandbox.id), sandbox.pause_pid,
                                                            sandbox.pause_start):
            return f"its pause process (pid {sandbox.pause_pid}) died while pycrid was down"
        return ""

    def upgrade(self, sandbox: Sandbox) -> bool:
        """Re-execs the pod's monitor into this agent's code if it runs another build."""
        monitor = self.monitor(sandbox)
        try:
            if monitor.ping().get("build") == build_id():
                return False
            monitor.upgrade()
        except PycridError as e:
            log.warning("sandbox %s: upgrading its monitor failed: %s", sandbox.id[:12], e)
            return False
        log.info("sandbox %s: monitor %d re-exec'd into build %s", sandbox.id[:12], sandbox.monitor_pid, build_id())
        return True

    def end(self, sandbox: Sandbox) -> None:
        """Ends the pod's monitor and pause (and anything of the pod they still run), and removes
        the pause's cgroup; safe to repeat, and works whether or not the monitor is alive."""
        self._supervisor.unwatch(pause_key(sandbox.id))
        self._supervisor.unwatch(monitor_key(sandbox.id))
        monitor_fd = open_pidfd(sandbox.monitor_pid, sandbox.monitor_start)
        try:
            try:
                self.monitor(sandbox).shutdown()
            except PycridError as e:
                log.info("sandbox %s: monitor unreachable (%s); ending its processes directly", sandbox.id[:12], e)
                send_signal(sandbox.monitor_pid, sandbox.monitor_start)
                send_signal(sandbox.pause_pid, sandbox.pause_start)
            if monitor_fd >= 0 and not wait_readable([monitor_fd], EXIT_WAIT):
                log.warning("sandbox %s: monitor %d did not exit; killing it", sandbox.id[:12], sandbox.monitor_pid)
                send_signal(sandbox.monitor_pid, sandbox.monitor_start)
        finally:
            if monitor_fd >= 0:
                os.close(monitor_fd)
        if sandbox.cgroup:
            if not sandbox.pause_pid:  # a failed set-up may have started one it never recorded
                self._cgroups.kill_all(sandbox.cgroup, signal.SIGKILL)
            self._cgroups.remove(sandbox.cgroup)  # waits while a killed pause exits

    def end_unrecorded(self, sandbox_id: str) -> None:
        """Ends the monitor of a pod whose record was lost (quarantined), found by its socket in
        the pod's run dir; it kills whatever of the pod it still runs."""
        monitor = self._monitors.connect(sandbox_id, os.path.join(self._run_dir, sandbox_id))
        try:
            pid = int(monitor.ping()["pid"])
            started = start_time(pid) or 0
            monitor.shutdown()
        except PycridError:
            return  # no monitor (it died, or never started)
        if not wait_gone(pid, started, EXIT_WAIT):
            send_signal(pid, started)

    def kill_pause(self, sandbox: Sandbox) -> None:
        self._supervisor.unwatch(pause_key(sandbox.id))
        send_signal(sandbox.pause_pid, sandbox.pause_start)
