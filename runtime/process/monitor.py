"""What a pod monitor does for each container it started: copy its output into its CRI log file and
record its exit in its exit file.

A log that cannot be written (a full disk, an I/O error) costs that container its log lines and
nothing else: they are counted in ``<state dir>/log-dropped`` (read by the agent's metrics) and the
container keeps running with its pipes drained. A reopen (the kubelet rotated the log) that fails
keeps the old file.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from runtime.container.logs import LineSplitter, record
from runtime.errors import Internal
from runtime.process.attach import Stdin
from runtime.store.checkpoint import write_atomic

DRAIN_SECONDS = 0.2  # after a container exits, output still in its pipes gets this long
LAST_READS = 16  # reads of what a finished container's pipe already holds (at most 1 MiB)
INPUT_RETRY = 0.05  # seconds between tries to hand a container input it has no room for yet
DROPPED_FILE = "log-dropped"
log = logging.getLogger("pycrid.monitor")


def open_log(path: str) -> int:
    return os.open(path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)


class LogFile:
    def __init__(self, path: str, fd: int, dropped_path: str = "", dropped: tuple[int, int] = (0, 0)) -> None:
        self.path = path
        self.fd = fd
        self.dropped_lines, self.dropped_bytes = dropped
        self.dropped_path = dropped_path

    def write(self, stream: bytes, tag: bytes, text: bytes) -> None:
        line = record(time.time_ns(), stream, tag, text)
        try:
            os.write(self.fd, line)
        except OSError as e:
            self._drop(len(line), e)

    def _drop(self, size: int, error: OSError) -> None:
        if not self.dropped_lines:
            log.warning("log %s: %s; dropping lines until it can be written", self.path, error)
        self.dropped_lines += 1
        self.dropped_bytes += size
        if self.dropped_path:
            try:
                write_dropped(self.dropped_path, self.dropped_lines, self.dropped_bytes)
            except OSError:
                pass  # the run dir is a tmpfs of its own; if even it fails, the count stays in memory

    def reopen(self) -> None:
        """The new file first: if it cannot be opened, the old one stays in use."""
        try:
            fd = open_log(self.path)
        except OSError as e:
            raise Internal(f"reopening log {self.path}: {e}; still writing to the old file") from e
        os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def write_dropped(path: str, lines: int, size: int) -> None:
    """Rewritten in place, fixed width, so a reader never sees half a number."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.pwrite(fd, b"%20d %20d\n" % (lines, size), 0)
    finally:
        os.close(fd)


def read_dropped(state_dir: str) -> tuple[int, int]:
    """(lines, bytes) a container's log lost; (0, 0) when it lost none."""
    try:
        lines, size = Path(state_dir, DROPPED_FILE).read_text().split()
        return int(lines), int(size)
    except (OSError, ValueError):
        return 0, 0


def write_exit_file(path: str, status: int) -> None:
    exit_code = os.waitstatus_to_exitcode(status)
    signaled = exit_code < 0
    write_atomic(Path(path), json.dumps({
        "exit_code": 128 - exit_code if signaled else exit_code,
        "signal": -exit_code if signaled else 0,
        "finished_at": time.time_ns(),
    }).encode())


@dataclass
class Watched:
    """One container: its output (fd → splitter; a TTY container's one fd is its terminal's master),
    log, stdin and attach clients, and exit once known."""

    id: str
    pid: int
    exit_file: str
    log: LogFile
    stdin: Stdin = field(default_factory=Stdin)
    streams: dict[int, bytes] = field(default_factory=dict)  # fd → b"stdout" | b"stderr"
    pipes: dict[int, LineSplitter] = field(default_factory=dict)
    status: int | None = None
    drain_until: float = 0.0


class Watcher:
    def __init__(self) -> None:
        self._by_pid: dict[int, Watched] = {}
        self._by_fd: dict[int, Watched] = {}

    def adopt(self, container_id: str, pid: int, exit_file: str, log: LogFile, pipes: dict[int, bytes],
              pending: dict[int, bytes] | None = None, stdin: Stdin | None = None) -> Watched:
        watched = Watched(container_id, pid, exit_file, log, stdin or Stdin())
        for fd, stream in pipes.items():
            os.set_blocking(fd, False)
            splitter = LineSplitter(partial(log.write, stream))
            if pending and pending.get(fd):
                splitter.feed(pending[fd])
            watched.pipes[fd] = splitter
            watched.streams[fd] = stream
            self._by_fd[fd] = watched
        self._by_pid[pid] = watched
        return watched

    def fds(self) -> list[int]:
        """What to wait on: containers' output, and what attach clients type."""
        return [*self._by_fd, *(fd for w in self._by_pid.values() for fd in w.stdin.inputs())]

    def running(self) -> dict[str, int]:
        return {w.id: w.pid for w in self._by_pid.values() if w.status is None}

    def find(self, container_id: str) -> Watched | None:
        return next((w for w in self._by_pid.values() if w.id == container_id), None)

    def empty(self) -> bool:
        return not self._by_pid

    def timeout(self) -> float | None:
        """Until the next container whose output stopped coming must be finished, or input a
        container has not taken yet is tried again."""
        due = [w.drain_until for w in self._by_pid.values() if w.status is not None]
        if self.flush():
            due.append(time.monotonic() + INPUT_RETRY)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def flush(self) -> bool:
        """Input typed by attach clients, to containers that can take it; True if some waits."""
        return any([w.stdin.flush() for w in self._by_pid.values()])

    def readable(self, fd: int) -> None:
        watched = self._by_fd.get(fd)
        if watched is None:  # what an attach client typed
            for w in self._by_pid.values():
                if (attacher := w.stdin.owner(fd)) is not None:
                    w.stdin.typed(attacher)
            return
        try:
            data = _read(fd)
        except BlockingIOError:
            return
        if data:
            self._take(watched, fd, data)
        else:
            self._close_pipe(watched, fd)
            self._finish_if_done(watched)

    def _take(self, watched: Watched, fd: int, data: bytes) -> None:
        watched.pipes[fd].feed(data)
        watched.stdin.copy_out(watched.streams[fd], data)

    def exited(self, pid: int, status: int) -> bool:
        """A reaped pid; True if it was a container's init."""
        watched = self._by_pid.get(pid)
        if watched is None:
            return False
        watched.status = status
        watched.drain_until = time.monotonic() + DRAIN_SECONDS
        self._finish_if_done(watched)
        return True

    def expire(self) -> None:
        now = time.monotonic()
        for watched in [w for w in self._by_pid.values() if w.status is not None and w.drain_until <= now]:
            self._finish(watched)

    def _close_pipe(self, watched: Watched, fd: int) -> None:
        watched.pipes.pop(fd).close()
        watched.streams.pop(fd)
        del self._by_fd[fd]
        os.close(fd)

    def _finish_if_done(self, watched: Watched) -> None:
        if watched.status is not None and not watched.pipes:
            self._finish(watched)

    def _finish(self, watched: Watched) -> None:
        watched.stdin.end()
        for fd in list(watched.pipes):
            self._take_last(watched, fd)
            self._close_pipe(watched, fd)
        watched.log.close()
        del self._by_pid[watched.pid]
        try:
            write_exit_file(watched.exit_file, watched.status or 0)
        except Exception:  # noqa: BLE001 - one container's exit file must not stop the monitor
            log.exception("container %s (init %d): writing %s failed", watched.id, watched.pid, watched.exit_file)

    def _take_last(self, watched: Watched, fd: int) -> None:
        """What the pipe holds already: a drain whose time ran out stops waiting for more output,
        it does not drop what came (a busy monitor may reach its deadline before the pipe's turn)."""
        for _ in range(LAST_READS):  # bounded: a child left behind may go on writing
            try:
                data = _read(fd)
            except BlockingIOError:
                return
            if not data:
                return
            self._take(watched, fd, data)

    def drop_clients(self) -> None:
        for w in self._by_pid.values():
            w.stdin.drop_clients()

    # --- handover across a re-exec (runtime/process/handover.py) ---------------------------
    def state(self) -> tuple[list[dict[str, Any]], list[int]]:
        """The containers as plain data, and the descriptors that data names."""
        items, fds = [], []
        for w in self._by_pid.values():
            items.append({"id": w.id, "pid": w.pid, "exit_file": w.exit_file, "log_path": w.log.path,
                          "log_fd": w.log.fd, "dropped": [w.log.dropped_lines, w.log.dropped_bytes],
                          "dropped_path": w.log.dropped_path, "status": w.status,
                          "pipes": {str(fd): s.decode() for fd, s in w.streams.items()},
                          "pending": {str(fd): p.pending.hex() for fd, p in w.pipes.items()},
                          "stdin": {"fd": w.stdin.fd, "terminal": w.stdin.terminal, "once": w.stdin.once}})
            fds += [w.log.fd, *w.pipes, *((w.stdin.fd,) if w.stdin.fd >= 0 else ())]
        return items, fds

    def restore(self, items: list[dict[str, Any]]) -> list[int]:
        """Takes over what ``state`` described; returns the descriptors it now holds."""
        fds: list[int] = []
        for item in items:
            lines, size = item.get("dropped", (0, 0))
            log_file = LogFile(item["log_path"], int(item["log_fd"]), item.get("dropped_path", ""),
                               (int(lines), int(size)))
            pipes = {int(fd): s.encode() for fd, s in item["pipes"].items()}
            pending = {int(fd): bytes.fromhex(p) for fd, p in item.get("pending", {}).items()}
            held = item.get("stdin", {})
            stdin = Stdin(int(held.get("fd", -1)), bool(held.get("terminal")), bool(held.get("once")))
            watched = self.adopt(item["id"], int(item["pid"]), item["exit_file"], log_file, pipes, pending, stdin)
            if item.get("status") is not None:
                self.exited(watched.pid, int(item["status"]))
            fds += [log_file.fd, *pipes, *((stdin.fd,) if stdin.fd >= 0 else ())]
        return fds


def _read(fd: int) -> bytes:
    """One read of a container's output; a terminal whose other side is closed for good reads EIO,
    its EOF (BlockingIOError, an empty pipe, goes through)."""
    try:
        return os.read(fd, 65536)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        return b""
