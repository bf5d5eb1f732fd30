"""Processes named by pidfd: a pid alone can be reused by an unrelated process once ours exited and
was reaped; a pidfd opened while (pid, start time) still matched names our process for good."""
from __future__ import annotations

import contextlib
import os
import signal

from runtime.linux.poll import wait_readable
from runtime.linux.proc import start_time


def open_pidfd(pid: int, started: int) -> int:
    """A pidfd for ``pid`` if it is still the process that started at ``started``; -1 if gone."""
    if pid <= 0:
        return -1
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return -1
    if start_time(pid) != started:  # checked after the pidfd pins the process
        os.close(fd)
        return -1
    return fd


def send_signal(pid: int, started: int, sig: int = signal.SIGKILL) -> bool:
    """Signals the process if it is still ours; False if it is gone."""
    fd = open_pidfd(pid, started)
    if fd < 0:
        return False
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)
    return True


def wait_gone(pid: int, started: int, timeout: float | None) -> bool:
    """Whether the process has exited (or never was ours) within ``timeout`` seconds."""
    fd = open_pidfd(pid, started)
    if fd < 0:
        return True
    try:
        return bool(wait_readable([fd], timeout))
    finally:
        os.close(fd)
