"""The streaming server end to end, on loopback, with a local process standing in for a container's:
tokens are single-use and expire (404 and nothing else), a session that cannot start says why on
the error channel, an idle session is closed and its command ended, and a client that stops
reading stops the command instead of growing our memory; a WebSocket port-forward proxied by the
kubelet (no query) serves the PortForward request's ports; each connection is logged with the
transport and protocol it got."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from wsproto.events import CloseConnection

from cri.streaming.requests import ExecRequest, PortForwardRequest
from cri.streaming.server import StreamingServer
from runtime.container.sessions import AttachSession, ExecSession
from runtime.errors import FailedPrecondition
from runtime.process import protocol
from tests.unit.streaming.wsclient import Client

STDOUT, ERROR = 1, 3


class LocalRuntime:
    """exec_session runs the command on this machine, in a process group of its own (as the exec
    child in a pod leads one), reporting its exit like the pod monitor's exec child."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.refuse = False

    def exec_session(self, container_id: str, args: tuple[str, ...], tty: bool,
                     streams: frozenset[str]) -> ExecSession:
        if self.refuse:
            raise FailedPrecondition(f"container {container_id} is exited, not running")
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        self.processes.append(process)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def report() -> None:
            protocol.send(theirs, {"ok": {"exit_code": process.wait()}})
            theirs.close()

        threading.Thread(target=report, daemon=True).start()
        assert process.stdin and process.stdout and process.stderr
        return ExecSession(os.dup(process.stdin.fileno()), os.dup(process.stdout.fileno()),
                           os.dup(process.stderr.fileno()), pid=process.pid, report=ours)

    def attach_session(self, container_id: str, streams: frozenset[str]) -> AttachSession:
        raise FailedPrecondition("no attach here")

    def connect_port(self, sandbox_id: str, port: int) -> socket.socket:
        """A port of this machine's loopback stands in for the pod's."""
        return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.fixture
def server() -> Iterator[tuple[StreamingServer, LocalRuntime]]:
    runtime = LocalRuntime()
    server = StreamingServer("127.0.0.1:0", runtime, token_seconds=2.0, idle_timeout=1.0)
    server.start()
    yield server, runtime
    server.stop()
    for process in runtime.processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def connect(url: str) -> tuple[Client, str]:
    host, _, rest = url.removeprefix("http://").partition("/")
    address, _, port = host.rpartition(":")
    return Client(socket.create_connection((address, int(port)), timeout=5)), "/" + rest


def exec_url(server: StreamingServer, *args: str) -> str:
    return server.url(ExecRequest("c1", tty=False, stdin=False, stdout=True, stderr=False, cmd=args))


def http_status(url: str) -> str:
    client, target = connect(url)
    client.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return client.sock.recv(4096).split(b"\r\n")[0].decode()


def channels(client: Client) -> dict[int, bytes]:
    """Every channel's data until the server closes (answered, as any WebSocket client does)."""
    got: dict[int, bytes] = {}
    while isinstance(message := client.receive(), bytes):
        if message:
            got[message[0]] = got.get(message[0], b"") + message[1:]
    if isinstance(message, CloseConnection):
        client.send(message.response())
    return got


def test_a_url_serves_once_and_only_before_it_expires(server) -> None:
    streaming, _ = server
    assert http_status(f"{streaming.base_url}/exec/no-such-token") == "HTTP/1.1 404 Not Found"
    url = exec_url(streaming, "echo", "hi")
    client, target = connect(url)
    client.request(["v4.channel.k8s.io"], target)
    assert type(client.response()[0]).__name__ == "AcceptConnection"
    assert channels(client)[STDOUT] == b"hi\n"
    assert http_status(url) == "HTTP/1.1 404 Not Found", "a used token served again"
    stale = exec_url(streaming, "echo", "late")
    time.sleep(2.2)
    assert http_status(stale) == "HTTP/1.1 404 Not Found", "an expired token served"
    attach = exec_url(streaming, "true").replace("/exec/", "/attach/")
    assert http_status(attach) == "HTTP/1.1 404 Not Found", "an exec token served an attach"


def test_the_exit_code_reaches_the_client_as_a_status(server) -> None:
    streaming, _ = server
    client, target = connect(exec_url(streaming, "sh", "-c", "echo bye; exit 3"))
    client.request(["v5.channel.k8s.io", "v4.channel.k8s.io"], target)
    client.response()
    got = channels(client)
    status = json.loads(got[ERROR])
    assert got[STDOUT] == b"bye\n"
    assert (status["status"], status["reason"], status["details"]["causes"][0]) == (
        "Failure", "NonZeroExitCode", {"reason": "ExitCode", "message": "3"})


def test_a_session_that_cannot_start_says_why(server) -> None:
    streaming, runtime = server
    url = exec_url(streaming, "true")
    runtime.refuse = True  # the container stopped between the Exec RPC and the client's connect
    client, target = connect(url)
    client.request(["v4.channel.k8s.io"], target)
    client.response()
    status = json.loads(channels(client)[ERROR])
    assert status["status"] == "Failure" and "not running" in status["message"]


def test_an_idle_session_is_closed_and_its_command_ended(server) -> None:
    streaming, runtime = server
    client, target = connect(exec_url(streaming, "sleep", "30"))
    client.request(["v4.channel.k8s.io"], target)
    client.response()
    started = time.monotonic()
    channels(client)  # until the server closes
    assert time.monotonic() - started < 5
    (process,) = runtime.processes
    assert process.wait(5) != 0, "the idle session's command was left running"


def test_a_client_that_stops_reading_stops_the_command(server) -> None:
    streaming, runtime = server
    client, target = connect(exec_url(streaming, "head", "-c", "200000000", "/dev/zero"))
    client.request(["v4.channel.k8s.io"], target)
    client.response()
    time.sleep(0.8)  # read nothing: the command must be held back, not buffered for us
    (process,) = runtime.processes
    assert process.poll() is None, "200 MB went somewhere while the client read nothing"
    with open(f"/proc/{process.pid}/io") as io:
        written = int(next(line for line in io if line.startswith("wchar:")).split()[1])
    assert written < 16 * 1024 * 1024, f"{written} bytes written with nobody reading"


def test_a_websocket_port_forward_without_a_query_serves_the_requested_port(server) -> None:
    # What the kubelet does with a client's /portForward?port=N over WebSocket: N goes into the
    # PortForward RPC, and the upgrade is proxied to our URL as it is, without the query.
    streaming, _ = server
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def echo_once() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())

        threading.Thread(target=echo_once, daemon=True).start()
        client, target = connect(streaming.url(PortForwardRequest("s1", (port,))))
        client.request(["v4.channel.k8s.io"], target)
        assert type(client.response()[0]).__name__ == "AcceptConnection"
        prefix = port.to_bytes(2, "little")
        assert {client.receive(), client.receive()} == {b"\x00" + prefix, b"\x01" + prefix}
        client.message(b"\x00hello")
        assert client.receive() == b"\x00HELLO"


def test_each_connection_is_logged_with_its_transport_and_protocol(server, caplog) -> None:
    streaming, _ = server
    caplog.set_level(logging.INFO, logger="pycrid.streaming")
    client, target = connect(exec_url(streaming, "true"))
    client.request(["v5.channel.k8s.io", "v4.channel.k8s.io"], target)
    client.response()
    channels(client)
    client, target = connect(streaming.url(PortForwardRequest("s1", ())))
    client.sock.sendall(f"POST {target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                        "X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n".encode())
    assert client.sock.recv(4096).startswith(b"HTTP/1.1 101 ")
    client.sock.close()
    assert [r.getMessage() for r in caplog.records if r.name == "pycrid.streaming"] == [
        "streaming exec: WebSocket, subprotocol v5.channel.k8s.io",
        "streaming portforward: SPDY/3.1, protocol portforward.k8s.io"]
