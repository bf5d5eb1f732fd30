"""The agent's side of the fork server: find or start it, ask it to spawn, hand it new code."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from runtime.errors import DeadlineExceeded, Internal, Unavailable
from runtime.linux.poll import wait_readable
from runtime.process import protocol, sockpath
from runtime.process.build import build_id, source_root

REQUEST_TIMEOUT = 10.0  # a helper answers at once; only the work it starts may take long


def request(path: str, message: dict[str, Any], fds: tuple[int, ...] = (),
            timeout: float | None = None, what: str = "") -> dict[str, Any]:
    """One request to the helper serving ``path``, and its answer; a domain error if it failed,
    its message prefixed with ``what`` (the request's op by default). ``timeout``: seconds,
    REQUEST_TIMEOUT when None."""
    timeout = REQUEST_TIMEOUT if timeout is None else timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as s:
        s.settimeout(timeout)
        protocol.allow_large(s)
        try:
            sockpath.connect(s, path)
            protocol.send(s, message, fds)
            answer, extra = protocol.receive(s)
        except TimeoutError as e:
            raise DeadlineExceeded(f"{path}: no answer to {message.get('op')!r} within {timeout:.0f}s") from e
        except (OSError, ValueError) as e:
            raise Unavailable(f"{path}: {e}") from e
    for fd in extra:
        os.close(fd)
    if answer is None:
        raise Unavailable(f"{path} closed the connection")
    protocol.raise_error(answer, what or str(message.get("op")))
    return answer


def helper_argv(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """How to run one of pycrid's helper programs from this very code, wherever it is installed."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": source_root()}
    return [sys.executable, "-m", module, *args], env


class Child(Protocol):
    """The fork server as a child of this agent (a subprocess.Popen, or forkedstart's): to reap it."""

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ForkServer:
    def __init__(self, path: str, process: Child | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.path = path
        self.process = process  # set when this agent started it, so its exit can be reaped
        self.extra_args = extra_args
        # Waits for a replacement when a request finds the server gone (the agent's Supervisor).
        self.recover: Callable[[], bool] | None = None

    def ping(self) -> int:
        return int(request(self.path, {"op": "ping"})["pid"])

    def hello(self, timeout: float | None = None) -> dict[str, Any]:
        """The handshake of an agent that (re)connects: pid, build and protocol; ends "linger"."""
        return request(self.path, {"op": "attach"}, timeout=timeout)

    def linger(self) -> None:
        """The agent is going: exit once no pod is left (the monitors are its children)."""
        request(self.path, {"op": "linger"})

    def shutdown(self, timeout: float = 10.0) -> None:
        request(self.path, {"op": "shutdown"})
        if self.process is not None:
            self.process.wait(timeout)

    def upgrade(self) -> None:
        """Asks the running server to re-exec into this agent's code (same pid, same children)."""
        argv, env = helper_argv("runtime.process.forkserver", self.path, *self.extra_args)
        request(self.path, {"op": "upgrade", "argv": argv, "env": env})

    def launch(self, kind: str, spec: dict[str, Any], fds: tuple[int, ...] = ()) -> tuple[int, socket.socket]:
        """Forks a `kind` child that gets `fds` after its report socket; returns (pid, report socket)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        message = {"op": "spawn", "kind": kind, "spec": spec}
        try:
            try:
                answer = request(self.path, message, (theirs.fileno(), *fds))
            except Unavailable:
                if self.recover is None or not self.recover():
                    raise
                answer = request(self.path, message, (theirs.fileno(), *fds))
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
    protocol.raise_error(message, what)
    ok: dict[str, Any] = message.get("ok", {})
    return ok


# Only bounds a fork server that never answers: one that imports pycrid for seconds (an emulated
# machine, an overloaded node) must still come up.
START_TIMEOUT = 60.0


def start(path: str, log_path: str, extra_args: tuple[str, ...] = (), timeout: float = START_TIMEOUT) -> ForkServer:
    """A new fork server, started detached (its own session), once it answers."""
    argv, env = helper_argv("runtime.process.forkserver", path, *extra_args)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, close_fds=True, cwd="/", env=env)
    server = ForkServer(path, process, extra_args)
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.ping()
            return server
        except Unavailable:
            if process.poll() is not None or time.monotonic() > deadline:
                # One that is merely slow would bind the path later, after a retry started another:
                # an orphan that no request reaches and nothing stops.
                process.kill()
                process.wait()
                raise Unavailable(f"fork server did not start at {path}; see {log_path}") from None
            time.sleep(0.01)


def connect_or_start(path: str, log_path: str, extra_args: tuple[str, ...] = (),
                     timeout: float = START_TIMEOUT) -> ForkServer:
    """The running fork server at `path` (re-exec'd into this code if it runs another build), or a
    new one."""
    try:
        hello = ForkServer(path, extra_args=extra_args).hello()
    except Unavailable:
        return start(path, log_path, extra_args, timeout)
    server = ForkServer(path, extra_args=extra_args)
    if hello.get("build") != build_id():
        server.upgrade()
        wait_for_build(server, int(hello["pid"]), timeout)
    return server


def wait_for_build(server: ForkServer, pid: int, timeout: float) -> None:
    """Until the server at ``pid`` answers as this build (it re-execs in place). It keeps its
    listener, so a request waits in its backlog while the new code starts, rehearsal included
    (seconds in an emulated guest): each may take all the time that is left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            hello = server.hello(max(0.1, deadline - time.monotonic()))
            if hello.get("build") == build_id() and int(hello["pid"]) == pid:
                return
        except (Unavailable, DeadlineExceeded):
            pass
        if time.monotonic() > deadline:
            raise Unavailable(f"fork server {pid} at {server.path} did not come back as build {build_id()}")
        time.sleep(0.01)
