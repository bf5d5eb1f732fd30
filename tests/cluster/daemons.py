"""The cluster's long-running processes: each started in a session of its own with its output
appended to logs/NAME.log and its pid and start time in pids/NAME.pid, so they outlive `up` and
`down` finds them. A pid counts as the component's only while the process with that start time is
alive, so a recycled pid is never signalled. (Its command line is no test: it reads empty while the
process is in an exec, as the kubelet's wrapper is when it execs the kubelet, and a slow machine
then took a running kubelet for one that exited.)"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from runtime.linux import proc
from tests.cluster.layout import Layout


def pid_of(layout: Layout, name: str) -> int | None:
    """The component's pid while it runs, else None."""
    try:
        pid, started = (int(field) for field in layout.pidfile(name).read_text().split())
    except (OSError, ValueError):
        return None
    return pid if proc.is_alive(pid, started) else None


def launch(layout: Layout, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> int:
    for d in (layout.path("logs"), layout.path("pids")):
        d.mkdir(parents=True, exist_ok=True)
    with open(layout.log(name), "ab") as log:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, env=dict(env) if env is not None else None, cwd=cwd)
    # Popen has returned: the child is exec'd and unreaped, so its start time is there to read.
    layout.pidfile(name).write_text(f"{process.pid} {proc.start_time(process.pid)}\n")
    return process.pid


def stop(layout: Layout, name: str, timeout: float = 20.0) -> None:
    """SIGTERM, SIGKILL after ``timeout``; returns once it is gone (or a zombie, for PID 1 to reap)."""
    pid = pid_of(layout, name)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        if not _gone(layout, name, timeout):
            os.kill(pid, signal.SIGKILL)
            _gone(layout, name, 10.0)
    layout.pidfile(name).unlink(missing_ok=True)


def kill(layout: Layout, name: str) -> int:
    """SIGKILL now (the tests' crash of a component); returns the pid it had."""
    pid = pid_of(layout, name)
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    _gone(layout, name, 10.0)
    return pid


def _gone(layout: Layout, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_of(layout, name) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def write_config(path: Path, text: str) -> bool:
    """A component's config file, written only when it changes (kube-proxy exits when its file is
    written, and a rerun of `up` must leave running components alone); True when it did."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def log_tail(layout: Layout, name: str, chars: int = 4000) -> str:
    try:
        return layout.log(name).read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
