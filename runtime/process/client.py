"""The agent's side of the fork server: start it if it is not running, and ask it to spawn."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

from runtime import errors
from runtime.errors import DeadlineExceeded, FailedPrecondition, Internal, Unavailable
from runtime.linux.poll import wait_readable
from runtime.process import protocol


SERVER_ENV = "PYCRID_FORKSERVER"  # set by the fork server for its children: where to reach it


class ForkServer:
    def __init__(self, path: str, process: subprocess.Popen | None = None) -> None:
        self.path = path
        self._process = process  # set when this agent started it, so its exit can be reaped

    def _request(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as s:
            s.settimeout(10)
            try:
                s.connect(self.path)
                protocol.send(s, message, fds)
                answer, extra = protocol.receive(s)
            except OSError as e:
                raise Unavailable(f"fork server at {self.path}: {e}") from e
        for fd in extra:
            os.close(fd)
        if answer is None:
            raise Unavailable(f"fork server at {self.path} closed the connection")
        if "error" in answer:
            raise Internal(f"fork server: {answer['error']}")
        return answer

    def ping(self) -> int:
        return int(self._request({"op": "ping"})["pid"])

    def adopt(self, pid: int, exit_file: str, log_path: str, pipes: dict[int, bytes]) -> None:
        """Hands a started container's stdio pipes and exit over to the fork server."""
        self._request({"op": "adopt", "pid": pid, "exit_file": exit_file, "log_path": log_path,
                       "streams": [s.decode() for s in pipes.values()]}, tuple(pipes))

    def reopen_log(self, pid: int) -> None:
        """Reopens the log file of the container whose init is `pid` (after the kubelet rotated it)."""
        if not self._request({"op": "reopen", "pid": pid}).get("reopened"):
            raise FailedPrecondition(f"no container with init pid {pid} is being logged")

    def shutdown(self, timeout: float = 10.0) -> None:
        self._request({"op": "shutdown"})
        if self._process is not None:
            self._process.wait(timeout)

    def launch(self, kind: str, spec: dict[str, Any], fds: tuple[int, ...] = ()) -> tuple[int, socket.socket]:
        """Forks a `kind` child that gets `fds` after its report socket; returns (pid, report socket)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            answer = self._request({"op": "spawn", "kind": kind, "spec": spec}, (theirs.fileno(), *fds))
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return int(answer["pid"]), mine

    def spawn(self, kind: str, spec: dict[str, Any], timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
        """Forks a `kind` child and waits for its report; returns (child pid, report["ok"])."""
        pid, report = self.launch(kind, spec)
        with report:
            return pid, wait_report(report, f"{kind} {spec.get('id', '')}", pid, timeout)


def wait_report(report: socket.socket, what: str, pid: int, timeout: float | None) -> dict[str, Any]:
    ready = wait_readable([report], timeout)
    if not ready:
        raise DeadlineExceeded(f"{what}: no report within {timeout:.0f}s")
    message, fds = protocol.receive(report)
    for fd in fds:
        os.close(fd)
    if message is None:
        raise Internal(f"{what}: process {pid} exited without a report")
    if "error" in message:
        # A child may name the domain error it hit (a hostile layer is InvalidArgument, not Internal).
        cls = getattr(errors, message.get("error_class", ""), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.PycridError)):
            cls = Internal
        raise cls(f"{what}: {message['error']}")
    return message.get("ok", {})


def connect_or_start(path: str, log_path: str, extra_args: tuple[str, ...] = (),
                     timeout: float = 10.0) -> ForkServer:
    """The running fork server at `path`, or a new one started detached (its own session)."""
    try:
        ForkServer(path).ping()
        return ForkServer(path)
    except Unavailable:
        pass
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "runtime.process.forkserver", path, *extra_args],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         close_fds=True, cwd="/", env=_child_env())
    server = ForkServer(path, process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.ping()
            return server
        except Unavailable:
            if process.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"fork server did not start at {path}; see {log_path}") from None
            time.sleep(0.01)


def _child_env() -> dict[str, str]:
    """The fork server imports pycrid from wherever this process did, even with cwd=/."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": here}
    return env
