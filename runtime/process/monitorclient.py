"""The agent's side of a pod monitor (runtime/process/podmonitor.py): one per pod, reached at a
socket in the pod's run dir, so an agent that restarts finds it again by path."""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol

from runtime import spans
from runtime.container.users import InitialUser
from runtime.errors import FailedPrecondition, Unavailable
from runtime.process.client import REQUEST_TIMEOUT, ForkServer, helper_argv, request
from runtime.process.execspec import ExecSpec
from runtime.process.initspec import InitSpec
from runtime.sandbox.namespaces import PinSpec
from runtime.store.codec import decode, encode

SOCKET_NAME = "monitor.sock"
ANSWER_SLACK = 5.0  # beyond a start's own deadline: the monitor answers as soon as it kills it


@dataclass(frozen=True)
class Started:
    """A container started by its pod's monitor."""

    pid: int  # its init, as the agent sees it
    started_at: int  # ns since the epoch
    user: InitialUser | None  # the user init became before exec


class PodMonitor:
    def __init__(self, sandbox_id: str, path: str) -> None:
        self.sandbox_id = sandbox_id
        self.path = path

    def _request(self, message: dict[str, Any], fds: tuple[int, ...] = (),
                 timeout: float = REQUEST_TIMEOUT, what: str = "") -> dict[str, Any]:
        try:
            return request(self.path, message, fds, timeout, what)
        except Unavailable as e:
            # Its pod fails as soon as the agent sees the death (a pidfd away): not a retry.
            raise FailedPrecondition(f"sandbox {self.sandbox_id}: its monitor is not running ({e})") from e

    def ping(self) -> dict[str, Any]:
        return self._request({"op": "ping"})

    def start_pause(self, spec: dict[str, Any]) -> tuple[int, int]:
        """The pod's pause process: (pid, start time)."""
        answer = self._request({"op": "pause", "spec": spec}, timeout=60.0)
        return int(answer["pid"]), int(answer["start_time"])

    def start(self, spec: InitSpec, timeout: float) -> Started:
        """Starts a container (lets its prepared init go on, if it has one), killed by the monitor
        if not running within ``timeout`` seconds."""
        asked = time.monotonic()
        answer = self._request({"op": "start", "spec": spec.to_dict(), "timeout": timeout},
                               timeout=timeout + ANSWER_SLACK, what=f"starting container {spec.id}")
        spans.add_marks(asked, answer.get("marks"), time.monotonic(), "monitor.reply")
        # A monitor of an older build (until the agent has upgraded it) reports no user.
        user = decode(InitialUser, answer["user"]) if answer.get("user") is not None else None
        return Started(int(answer["pid"]), int(answer["started_at"]), user)

    def prepare(self, spec: InitSpec, timeout: float) -> int:
        """Sets the container's init up, held until start() lets it go on: its pid."""
        asked = time.monotonic()
        answer = self._request({"op": "prepare", "spec": spec.to_dict(), "timeout": timeout},
                               timeout=timeout + ANSWER_SLACK, what=f"preparing container {spec.id}")
        spans.add_marks(asked, answer.get("marks"), time.monotonic(), "monitor.reply")
        return int(answer["pid"])

    def discard(self, container_id: str) -> None:
        """Kills the container's prepared init, if it has one."""
        self._request({"op": "discard", "id": container_id}, what=f"discarding container {container_id}")

    def exec(self, spec: ExecSpec, stdio: tuple[int, int, int]) -> tuple[int, socket.socket]:
        """Runs a command in a container with ``stdio``; (exec child pid, the socket it reports on)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            answer = self._request({"op": "exec", "spec": encode(spec)}, (theirs.fileno(), *stdio),
                                   what=f"exec in container {spec.id}")
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return int(answer["pid"]), mine

    def attach(self, container_id: str, streams: list[str], fds: tuple[int, ...]) -> None:
        """Attaches a client to the container's stdio: fds in the order of ``streams`` (the read
        end of what it types for "stdin", write ends for "stdout", "stderr")."""
        self._request({"op": "attach", "id": container_id, "streams": streams}, fds,
                      what=f"attach to container {container_id}")

    def resize(self, container_id: str, rows: int, columns: int) -> None:
        self._request({"op": "resize", "id": container_id, "rows": rows, "columns": columns},
                      what=f"resizing the terminal of container {container_id}")

    def reopen_log(self, container_id: str) -> None:
        self._request({"op": "reopen", "id": container_id}, what=f"reopening the log of container {container_id}")

    def shutdown(self) -> None:
        """Kills what is left of the pod and exits once every process of it is reaped."""
        self._request({"op": "shutdown"})

    def upgrade(self) -> None:
        argv, env = helper_argv("runtime.process.podmonitor")
        self._request({"op": "upgrade", "argv": argv, "env": env})


class MonitorClient(Protocol):
    """What the agent asks of a pod's monitor (PodMonitor; a fake in runtime/process/testing.py)."""

    def ping(self) -> dict[str, Any]: ...

    def start_pause(self, spec: dict[str, Any]) -> tuple[int, int]: ...

    def start(self, spec: InitSpec, timeout: float) -> Started: ...

    def prepare(self, spec: InitSpec, timeout: float) -> int: ...

    def discard(self, container_id: str) -> None: ...

    def exec(self, spec: ExecSpec, stdio: tuple[int, int, int]) -> tuple[int, socket.socket]: ...

    def attach(self, container_id: str, streams: list[str], fds: tuple[int, ...]) -> None: ...

    def resize(self, container_id: str, rows: int, columns: int) -> None: ...

    def reopen_log(self, container_id: str) -> None: ...

    def shutdown(self) -> None: ...

    def upgrade(self) -> None: ...


class Monitors(Protocol):
    """Making and reaching the pods' monitors (MonitorFactory; a fake in runtime/process/testing.py)."""

    def spawn(self, sandbox_id: str, run_dir: str, pins: PinSpec) -> tuple[int, int]:
        """Forks the pod's monitor, which pins the pod's namespaces first: (pid, start time)."""

    def connect(self, sandbox_id: str, run_dir: str) -> MonitorClient: ...


class MonitorFactory:
    def __init__(self, forkserver: ForkServer) -> None:
        self._forkserver = forkserver

    def spawn(self, sandbox_id: str, run_dir: str, pins: PinSpec) -> tuple[int, int]:
        path = os.path.join(run_dir, SOCKET_NAME)
        pid, report = self._forkserver.spawn("monitor", {"id": sandbox_id, "socket": path, "pins": pins.to_dict()})
        return pid, int(report["start_time"])

    def connect(self, sandbox_id: str, run_dir: str) -> MonitorClient:
        return PodMonitor(sandbox_id, os.path.join(run_dir, SOCKET_NAME))

