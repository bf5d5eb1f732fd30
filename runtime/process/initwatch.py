"""The pod monitor's side of a container init's phase protocol (runtime/process/protocol.py), one
message at a time: the monitor's loop hands each message over as it comes, and never waits on init.

Init's "ready" (with the user it became) then EOF means execve succeeded (init's end of the
socket is close-on-exec); any other message, or EOF before "ready", is a failure. A TTY
container's init sends its terminal's master first; a held one (a prepared start) says "created"
before its "ready" and waits there until the monitor says "go".
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import FailedPrecondition, Internal, InvalidArgument, PycridError, ResourceExhausted
from runtime.process import protocol

# What a failed init may call its error: the container's config or image is at fault. A name that
# is missing from the image is a bad argument too (NotFound would say the container is gone).
INIT_ERRORS: dict[str, type[PycridError]] = {
    "InvalidArgument": InvalidArgument, "NotFound": InvalidArgument,
    "FailedPrecondition": FailedPrecondition, "ResourceExhausted": ResourceExhausted}

# What a message told: nothing to do yet, a held init is set up, init has exec'd.
WAITING, CREATED, EXECED = "waiting", "created", "exec'd"


@dataclass
class InitWatch:
    """``hold``: a prepared start, whose init says "created" first. ``marks``: when each step of
    the start ended, ours and init's (CLOCK_MONOTONIC)."""

    hold: bool = False
    terminal: int = -1  # the master of a TTY container's terminal, ours once init sent it
    user: dict[str, Any] | None = None  # the user init became, from its "ready"
    marks: list[tuple[str, float]] = field(default_factory=list)
    failed: Exception | None = None  # our side's failure (joining the cgroup), told unless init says why

    def read(self, sync: socket.socket) -> str:
        """Takes what init sent so far on ``sync`` (non-blocking), up to the first step that
        is news: CREATED, EXECED, or WAITING once nothing more is queued; raises the failure."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sync, protocol.MAX_MESSAGE, protocol.MAX_FDS)
            except BlockingIOError:
                return WAITING
            except ConnectionResetError:
                continue  # init closed with a message of ours unread; what it sent before is still queued
            step = self.take(data, fds)
            if step != WAITING:
                return step

    def take(self, data: bytes, fds: list[int]) -> str:
        """One message from init (b"": its end closed) and the descriptors it carried: WAITING,
        CREATED or EXECED; raises the failure, init's own when it reported one."""
        if data == protocol.TERMINAL and fds and self.terminal < 0:
            self.terminal, fds = fds[0], fds[1:]
            _close(fds)
            return WAITING
        _close(fds)
        message = _decode(data)
        if isinstance(message, dict) and "error" in message:
            raise failure(data, message)
        if self.failed is not None and not data:
            raise self.failed
        if self.hold and self.user is None and isinstance(message, dict) and "created" in message:
            self._add_marks(message)
            self.hold = False
            return CREATED
        if self.user is None and isinstance(message, dict) and isinstance(message.get("ready"), dict):
            self.user = message["ready"]
            self._add_marks(message)
            return WAITING
        if self.user is not None and not data:
            return EXECED
        raise failure(data, message)

    def _add_marks(self, message: dict[str, Any]) -> None:
        self.marks.extend((str(m[0]), float(m[1])) for m in message.get("marks", ()))

    def take_terminal(self) -> int:
        """The terminal's master, now the caller's to close (-1: none)."""
        terminal, self.terminal = self.terminal, -1
        return terminal

    def close(self) -> None:
        if self.terminal >= 0:
            os.close(self.take_terminal())


def failure(data: bytes, message: Any) -> PycridError:
    """The error for what init sent instead of the protocol's next step (b"": it exited)."""
    if isinstance(message, dict) and "error" in message and "phase" not in message:
        return protocol.reported_error(message)  # before its set-up began: as if it were ours
    if isinstance(message, dict) and "error" in message:
        cls = INIT_ERRORS.get(str(message.get("error_class", "")), Internal)
        return cls(f"container init failed at {message.get('phase')}: {message['error']}")
    return Internal("container init exited during set-up" if not data else f"unexpected {data!r}")


def _decode(data: bytes) -> Any:
    if not data.startswith(b"{"):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None  # not the protocol: "unexpected ..."


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
