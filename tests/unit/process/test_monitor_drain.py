"""A finished container's last output: when its drain runs out of time (a child left behind holds
its pipe open, or the monitor was busy past the deadline), what the pipe already holds still
reaches the log, and the exit file is written after it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.process import monitor
from runtime.process.monitor import LogFile, Watcher

PID = 4242


def lines(path: Path) -> list[tuple[str, ...]]:
    return [tuple(line.split(" ", 3)[1:]) for line in path.read_text().splitlines()]


@pytest.fixture
def watched(tmp_path: Path):
    log_path = tmp_path / "c.log"
    log = LogFile(str(log_path), os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    read_end, write_end = os.pipe()
    watcher = Watcher()
    watcher.adopt("c", PID, str(tmp_path / "exit"), log, {read_end: b"stdout"})
    yield watcher, write_end, log_path, tmp_path / "exit"
    os.close(write_end)


def test_output_in_the_pipe_when_the_drain_expires_is_logged(watched, monkeypatch) -> None:
    watcher, write_end, log_path, exit_file = watched
    os.write(write_end, b"first\nstill here\npartial")  # the writer stays open: no EOF comes
    assert watcher.exited(PID, 0)
    assert not exit_file.exists()  # draining: the output gets its time
    monkeypatch.setattr(monitor.time, "monotonic", lambda: float("inf"))  # the deadline passed unread
    watcher.expire()
    assert exit_file.exists() and watcher.fds() == []
    assert lines(log_path) == [("stdout", "F", "first"), ("stdout", "F", "still here"), ("stdout", "P", "partial")]


def test_a_child_that_keeps_writing_does_not_hold_the_monitor(watched, monkeypatch) -> None:
    watcher, write_end, log_path, exit_file = watched
    os.set_blocking(write_end, False)
    written = 0
    try:
        while True:  # the pipe full, as behind a writer that never stops
            written += os.write(write_end, b"x" * 4095 + b"\n")
    except BlockingIOError:
        pass
    assert watcher.exited(PID, 0)
    monkeypatch.setattr(monitor, "LAST_READS", 2)
    monkeypatch.setattr(monitor.time, "monotonic", lambda: float("inf"))
    watcher.expire()
    assert exit_file.exists()
    assert 0 < len(lines(log_path)) * 4096 <= min(written, 2 * 65536)
