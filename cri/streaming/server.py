"""The streaming server: an HTTP/1.1 listener (the `[streaming] address`) that serves the URLs the
Exec, Attach and PortForward RPCs hand out. A URL is /exec|attach|portforward/<token>; its token is
single-use and expires (tokens.py); an unknown, used or expired one gets 404 and nothing else.
A request upgrades to SPDY/3.1 or WebSocket, and the session runs over it.

One thread per connection; every copy within a session is bounded by the transports' flow control
(back-pressure, not buffering), and a session idle past the configured timeout is closed.
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING, Protocol

from cri.streaming.httphead import BadRequest, RequestHead, read_head, respond
from cri.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest, StreamRequest
from cri.streaming.tokens import Tokens
from runtime.errors import PycridError

if TYPE_CHECKING:
    from runtime.container.sessions import AttachSession, ExecSession

log = logging.getLogger("pycrid.streaming")
KINDS = {ExecRequest: "exec", AttachRequest: "attach", PortForwardRequest: "portforward"}


class Runtime(Protocol):
    """What the sessions need of the runtime (the container and sandbox managers)."""

    def exec_session(self, container_id: str, args: tuple[str, ...], tty: bool,
                     streams: frozenset[str]) -> ExecSession: ...

    def attach_session(self, container_id: str, streams: frozenset[str]) -> AttachSession: ...

    def connect_port(self, sandbox_id: str, port: int) -> socket.socket: ...


class StreamingRuntime:
    """The runtime calls the sessions make: containers' for exec and attach, sandboxes' for ports."""

    def __init__(self, containers: ContainerSessions, sandboxes: PodPorts) -> None:
        self.exec_session = containers.exec_session
        self.attach_session = containers.attach_session
        self.connect_port = sandboxes.connect_port


class ContainerSessions(Protocol):
    def exec_session(self, container_id: str, args: tuple[str, ...], tty: bool,
                     streams: frozenset[str]) -> ExecSession: ...

    def attach_session(self, container_id: str, streams: frozenset[str]) -> AttachSession: ...


class PodPorts(Protocol):
    def connect_port(self, sandbox_id: str, port: int) -> socket.socket: ...


class StreamingServer:
    def __init__(self, address: str, runtime: Runtime, token_seconds: float = 60.0,
                 idle_timeout: float = 4 * 3600.0) -> None:
        host, _, port = address.rpartition(":")
        self._listener = socket.create_server((host.strip("[]") or "127.0.0.1", int(port or 0)))
        bound = self._listener.getsockname()
        self.base_url = f"http://{bound[0]}:{bound[1]}" if ":" not in bound[0] else f"http://[{bound[0]}]:{bound[1]}"
        self._runtime = runtime
        self._tokens: Tokens[StreamRequest] = Tokens(token_seconds)
        self.idle_timeout = idle_timeout
        self._thread = threading.Thread(target=self._accept, name="streaming", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._listener.close()

    def url(self, request: StreamRequest) -> str:
        return f"{self.base_url}/{KINDS[type(request)]}/{self._tokens.issue(request)}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed: the agent is stopping
            threading.Thread(target=self._serve, args=(conn,), name="stream", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            head, received = read_head(conn)
            request = self._request(head)
            if request is None:
                respond(conn, "404 Not Found", body=b"unknown, used or expired streaming URL\n")
                return
            self._run(conn, head, received, request)
        except BadRequest as e:
            _answer(conn, "400 Bad Request", str(e))
        except PycridError as e:
            _answer(conn, "400 Bad Request", str(e))
        except Exception:  # noqa: BLE001 - one broken session must not end the server
            log.exception("streaming session failed")
        finally:
            conn.close()

    def _request(self, head: RequestHead) -> StreamRequest | None:
        kind, _, token = head.path.strip("/").partition("/")
        request = self._tokens.take(token) if token and "/" not in token else None
        if request is None or KINDS[type(request)] != kind:
            return None
        return request

    def _run(self, conn: socket.socket, head: RequestHead, received: bytes, request: StreamRequest) -> None:
        # The protocols (SPDY, WebSocket, the sessions) load with the first session, not at start:
        # most agents never serve one, and their code is ~1 MiB of the idle agent's heap.
        from cri.streaming.sessions import run_session

        run_session(conn, head, received, request, self._runtime, self.idle_timeout)


def _answer(conn: socket.socket, status: str, message: str) -> None:
    try:
        respond(conn, status, body=(message + "\n").encode())
    except OSError:
        pass
