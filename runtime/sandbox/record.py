"""The record pycrid keeps of a sandbox. State is derived from timestamps, never stored twice."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.sandbox.model import SandboxConfig, SandboxPaths


@dataclass(frozen=True)
class Sandbox:
    id: str
    config: SandboxConfig
    paths: SandboxPaths
    created_at: int  # ns since the epoch
    ips: tuple[str, ...] = ()
    pause_pid: int = 0  # the pod's PID-namespace holder, when it shares one
    pause_start: int = 0  # its start time, so a reused pid is never mistaken for it
    cgroup: str = ""  # the pause process's own cgroup (under the pod's cgroup_parent), when it has one
    monitor_pid: int = 0  # the pod's monitor (runtime/process/podmonitor.py)
    monitor_start: int = 0
    stopped_at: int = 0  # 0 while ready
    unknown: bool = False  # set-up or tear-down failed half-way: Stop/Remove must finish the job
    failure: str = ""  # why a pod that was ready no longer is (its monitor or pause died)

    @property
    def ready(self) -> bool:
        return self.stopped_at == 0 and not self.unknown and not self.failure
