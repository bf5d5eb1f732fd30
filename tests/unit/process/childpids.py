"""The test process's children, for tests that run a pod monitor's loop in it. In a full run
(`pytest tests`) that process also has other suites' daemons as children (the e2e suite's
pycrid, alive for the whole session): a wait for any child would wait on them for ever, and "no
child left" would never hold. These tests wait for and check the children they made."""
from __future__ import annotations

import os


def child_pids() -> set[int]:
    """Every child of this process, running or exited but not reaped yet (a zombie)."""
    pids: set[int] = set()
    for thread in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{thread}/children") as f:
            pids.update(int(pid) for pid in f.read().split())
    return pids
