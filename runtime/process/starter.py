"""Restoring a container from a checkpoint: a short-lived child of the pod monitor runs CRIU, which
restores the container's process tree detached; the starter reports the restored init's pid to
the monitor and exits, and init becomes the monitor's child (the monitor is a subreaper), which
reaps it and records its exit.

Only restores take this path: the monitor forks every other container's init itself
(podrequests.py). CRIU runs for seconds, as a subprocess, and needs modules no other child uses
(runtime/checkpoint/restorer.py): in a child of its own it never holds up the monitor's loop, and
none of it stays in the long-lived monitor. The starter leads a process group of its own that
CRIU shares: a restore that overruns its deadline is ended by one killpg from the monitor.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any

from runtime.errors import Internal
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import protocol
from runtime.process.initspec import InitSpec


def run_starter(raw: dict[str, Any], stdio: tuple[int, int, int], report: socket.socket) -> int:
    """In a fresh child of the monitor: `raw` is the InitSpec as a dict (built here, not in the
    long-lived monitor), `stdio` the restored process's (null or stdin, stdout, stderr write
    ends). CRIU makes the PID namespace itself."""
    os.setsid()
    marks: list[tuple[str, float]] = [("starter.fork", time.monotonic())]
    try:
        spec = InitSpec.from_dict(raw)
        marks.append(("starter.spec", time.monotonic()))
        if spec.restore is None:
            raise Internal(f"container {spec.id}: nothing to restore")
        # Loaded here, not in the fork server every monitor shares: CRIU's driver brings
        # subprocess and shutil, which no other child uses. The restored process keeps the
        # identity it had; no init reports one.
        from runtime.checkpoint.restorer import restore

        pid = restore(spec, stdio, LinuxSyscalls())
    except Exception as e:  # noqa: BLE001 - the monitor passes the reason on as the CRI error
        protocol.send(report, protocol.error_message(e))
        return 1
    marks.append(("starter.exec", time.monotonic()))
    protocol.send(report, {"pid": pid, "started_at": time.time_ns(), "user": None, "marks": marks})
    return 0
