"""ExecSync: run a command in a running container and collect its output, bounded in size and time.

Output beyond MAX_OUTPUT per stream is read and dropped (CVE-2022-1708: an unbounded reply could
exhaust the agent's memory); the command is killed when the timeout passes.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass

from runtime.errors import DeadlineExceeded, Internal
from runtime.linux.poll import wait_readable
from runtime.process.client import wait_report
from runtime.process.execspec import ExecSpec
from runtime.process.monitorclient import MonitorClient

MAX_OUTPUT = 16 * 1024 * 1024


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def exec_sync(monitor: MonitorClient, spec: ExecSpec, timeout: float | None) -> ExecResult:
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, report = monitor.exec(spec, (null, out_w, err_w))
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        for fd in (null, out_w, err_w):
            os.close(fd)
    deadline = None if timeout is None else time.monotonic() + timeout
    buffers = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r]
    watch_report = True  # until its report (or its death) is seen; the output may still come after
    what = f"exec in container {spec.id}"
    try:
        while open_fds:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                _kill_group(pid)
                raise DeadlineExceeded(f"{what}: command {list(spec.args)} timed out after {timeout}s")
            readable = wait_readable([*open_fds, *((report.fileno(),) if watch_report else ())], left)
            if watch_report and report.fileno() in readable:
                watch_report = False
                if report.recv(1, socket.MSG_PEEK) == b"":
                    # The exec child died without a report: end the command it left behind.
                    _kill_group(pid)
                    raise Internal(f"{what}: the exec process {pid} died")
            for fd in (fd for fd in readable if fd in open_fds):
                data = os.read(fd, 65536)
                if not data:
                    open_fds.remove(fd)
                elif len(buffers[fd]) < MAX_OUTPUT:
                    buffers[fd] += data[:MAX_OUTPUT - len(buffers[fd])]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        result = wait_report(report, what, pid, left)
    finally:
        report.close()
        os.close(out_r)
        os.close(err_r)
    return ExecResult(int(result["exit_code"]), bytes(buffers[out_r]), bytes(buffers[err_r]))


def _kill_group(pid: int) -> None:
    """The exec child and the command share its process group (it leads a session of its own),
    so one signal ends both, and the command alone once the child is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
