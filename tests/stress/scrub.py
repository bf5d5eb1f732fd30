"""After the leaks are reported: remove them, so that a run that found a bug still leaves the
shared machine as it found it. Best effort, every step on its own."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from runtime.linux import proc
from tests.e2e.daemon import remove_bridge
from tests.e2e.leaks import Leftovers, container_cgroups, mounts_under
from tests.stress.pycrid_processes import cgroup_members


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(proc.read_stat(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # orphans are reaped by PID 1 (every ~2 s here); zombies hold nothing


def scrub(base: Path, bridge: str, ids: set[str], left: Leftovers, survivors: list[int],
          stray_files: list[Path]) -> None:
    cgroups = sorted(set(container_cgroups(ids) + left.cgroups), key=len, reverse=True)
    kill_all(sorted(set(survivors) | set(cgroup_members(cgroups))))
    for mount in sorted(mounts_under(str(base)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    for cgroup in cgroups:
        try:
            os.rmdir(cgroup)
        except OSError:
            pass
    for veth in left.veths:
        subprocess.run(["ip", "link", "delete", veth], capture_output=True, check=False)
    remove_bridge(bridge)
    for path in stray_files:
        path.unlink(missing_ok=True)
