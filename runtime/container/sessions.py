"""Streaming sessions with containers, as the agent holds them for a client: an exec'd command, an
attach to a container's own stdio, a connection to a port in a pod's network namespace.

Each gives plain file descriptors (pipes, a terminal's master, a socket) that the streaming layer
(cri/streaming/) copies to and from the client's streams; the kernel's pipe buffers are the only
buffering between the container and the client, so a client that stops reading stops the copy and
the command writing (back-pressure), without growing our memory.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.errors import FailedPrecondition, Internal
from runtime.linux.terminal import set_window
from runtime.process import protocol
from runtime.process.client import wait_report
from runtime.process.execspec import ExecSpec
from runtime.process.monitorclient import MonitorClient

STREAMS = ("stdin", "stdout", "stderr")


@dataclass
class Session:
    """The client's side of a container's stdio: what the client types goes to ``stdin``; the
    container's output comes from ``stdout`` and ``stderr`` (a terminal: one fd for all three)."""

    stdin: int = -1
    stdout: int = -1
    stderr: int = -1
    terminal: bool = False
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def fds(self) -> set[int]:
        return {fd for fd in (self.stdin, self.stdout, self.stderr) if fd >= 0}

    def close_stdin(self) -> None:
        """The client's stdin ended: the container reads EOF (a terminal keeps its side open)."""
        if self.stdin >= 0 and not self.terminal:
            os.close(self.stdin)
            self.stdin = -1

    def close(self) -> None:
        for fd in self.fds():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdin = self.stdout = self.stderr = -1
        for closer in self._closers:
            closer()
        self._closers.clear()


@dataclass
class ExecSession(Session):
    pid: int = 0  # the exec child, which leads a session with the command (unless it has a TTY)
    command: int = 0  # a TTY command's pid: it leads a session of its own
    report: socket.socket | None = None

    def resize(self, rows: int, columns: int) -> None:
        if self.terminal:
            set_window(self.stdout, rows, columns)

    def wait(self, timeout: float | None) -> int:
        """The command's exit code, once it ended (DeadlineExceeded after ``timeout``)."""
        assert self.report is not None
        return int(wait_report(self.report, "exec", self.pid, timeout)["exit_code"])

    def kill(self) -> None:
        for group in (self.pid, self.command):
            if group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)


@dataclass
class AttachSession(Session):
    resize_to: Callable[[int, int], None] | None = None

    def resize(self, rows: int, columns: int) -> None:
        if self.resize_to is not None:
            self.resize_to(rows, columns)


def open_exec(monitor: MonitorClient, spec: ExecSpec, streams: frozenset[str]) -> ExecSession:
    """Starts ``spec`` in its container with the ``streams`` the client asked for (a subset of
    STREAMS); a TTY command gets a terminal made in the container instead of pipes."""
    theirs, ours = _pipes(streams if not spec.tty else frozenset())
    try:
        pid, report = monitor.exec(spec, theirs)
    except BaseException:
        for fd in ours.fds():
            os.close(fd)
        raise
    finally:
        for fd in set(theirs):
            os.close(fd)
    session = ExecSession(ours.stdin, ours.stdout, ours.stderr, pid=pid, report=report)
    session._closers.append(report.close)
    if spec.tty:
        _take_terminal(session, report)
    return session


def _take_terminal(session: ExecSession, report: socket.socket) -> None:
    message, fds = protocol.receive(report)
    if message is None or not fds:
        for fd in fds:
            os.close(fd)
        session.close()
        if message is not None:
            protocol.raise_error(message, "exec")
        raise Internal(f"exec: process {session.pid} ended before its terminal was made")
    session.terminal, session.command = True, int(message["pid"])
    session.stdin = session.stdout = session.stderr = fds[0]


def open_attach(monitor: MonitorClient, container_id: str, streams: frozenset[str], terminal: bool) -> AttachSession:
    """Attaches to the running container's own stdio (its terminal when it has one)."""
    wanted = [s for s in STREAMS if s in streams and not (terminal and s == "stderr")]
    if not wanted:
        raise FailedPrecondition(f"attach to container {container_id}: no stream asked for")
    ends: dict[str, tuple[int, int]] = {}  # stream → (our end, theirs)
    try:
        for stream in wanted:
            r, w = os.pipe2(os.O_CLOEXEC)
            ends[stream] = (w, r) if stream == "stdin" else (r, w)
        monitor.attach(container_id, wanted, tuple(theirs for _, theirs in ends.values()))
    except BaseException:
        for ours, _ in ends.values():
            os.close(ours)
        raise
    finally:
        for _, theirs in ends.values():
            os.close(theirs)
    held = {stream: mine for stream, (mine, _) in ends.items()}
    session = AttachSession(held.get("stdin", -1), held.get("stdout", -1), held.get("stderr", -1), terminal)
    if terminal:
        session.resize_to = lambda rows, columns: monitor.resize(container_id, rows, columns)
    return session


def _pipes(streams: frozenset[str]) -> tuple[tuple[int, int, int], Session]:
    """The command's stdio (/dev/null where the client asked for nothing) and our ends."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    theirs, ours = [null, null, null], Session()
    try:
        for n, stream in enumerate(STREAMS):
            if stream not in streams:
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            theirs[n], mine = (r, w) if stream == "stdin" else (w, r)
            setattr(ours, stream, mine)
    except BaseException:
        for fd in {*theirs, *ours.fds()}:
            os.close(fd)
        raise
    return (theirs[0], theirs[1], theirs[2]), ours


def connect_port(netns: str, port: int, run_in: Callable[[str, Callable[[], socket.socket]], socket.socket],
                 timeout: float = 5.0) -> socket.socket:
    """A TCP connection to ``port`` on the pod's loopback, made inside its network namespace (the
    socket stays there); "" is the host's (a hostNetwork pod)."""
    if not 0 < port < 65536:
        raise FailedPrecondition(f"port {port} is not a TCP port")

    def connect() -> socket.socket:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout)
        except OSError as e:
            raise FailedPrecondition(f"connecting to port {port} in the pod: {e}") from e

    sock = run_in(netns, connect) if netns else connect()
    sock.settimeout(None)
    return sock
