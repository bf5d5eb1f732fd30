"""The kubelet's own /exec, /attach and /portForward (what kubectl reaches through the API server)
on pycrid's streaming URLs, driven by client-go's clients (hack/kube/streamclient).

What reaches pycrid depends on what the client speaks to the kubelet (v1.36, ExtendWebSocketsToKubelet
on by default):
- WebSocket v5.channel.k8s.io (exec, attach): the kubelet ends it and speaks SPDY/3.1 to pycrid;
- WebSocket v4.channel.k8s.io and SPDY/3.1: the kubelet proxies the upgrade to pycrid as it is;
- port-forward, SPDY/3.1 tunnelled in WebSocket (kubectl's default): the kubelet unwraps the tunnel
  and speaks SPDY/3.1 to pycrid; plain WebSocket v4.channel.k8s.io framing is proxied as it is.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon
from tests.kubelet import streamclient
from tests.kubelet.pods import container_statuses, pod_in, running, wait_for
from tests.kubelet.standalone import StandaloneKubelet
from tests.kubelet.streamclient import Transport

IDLE = "trap 'exit 0' TERM; sleep 3600 & wait"
ECHO_PORT = 7000
CONTAINERS = ("shell", "tty", "echo")

V5 = Transport("websocket-v5", "websocket")
V4 = Transport("websocket-v4", "websocket", "v4.channel.k8s.io")
SPDY = Transport("spdy", "spdy")
EXEC_TRANSPORTS = (V5, V4, SPDY)
TUNNEL = Transport("spdy-in-websocket", "tunnel")
CHANNELS = Transport("websocket-v4", "websocket")
FORWARD_TRANSPORTS = (TUNNEL, CHANNELS, SPDY)
# What pycrid logs of the connection the kubelet makes to it, for each transport the client uses.
SPDY_REMOTECOMMAND = "SPDY/3.1, protocol v4.channel.k8s.io"
REACHES_PYCRID = {V5: SPDY_REMOTECOMMAND, V4: "WebSocket, subprotocol v4.channel.k8s.io", SPDY: SPDY_REMOTECOMMAND}
FORWARD_REACHES_PYCRID = {TUNNEL: "SPDY/3.1, protocol portforward.k8s.io",
                          CHANNELS: "WebSocket, subprotocol v4.channel.k8s.io",
                          SPDY: "SPDY/3.1, protocol portforward.k8s.io"}


def streaming_pod(name: str) -> dict[str, Any]:
    """A shell to exec in, a shell on a terminal to attach to, and an echo server on ECHO_PORT."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [
                {"name": "shell", "image": "busybox:1", "command": ["sh", "-c", IDLE]},
                {"name": "tty", "image": "busybox:1", "command": ["sh"], "stdin": True, "tty": True},
                {"name": "echo", "image": "busybox:1",
                 "command": ["nc", "-ll", "-p", str(ECHO_PORT), "-e", "cat"]}]}}


@dataclass(frozen=True)
class Pod:
    kubelet: StandaloneKubelet
    name: str
    pycrid_log: Path

    def url(self, kind: str, container: str, command: tuple[str, ...] = (), **streams: bool) -> str:
        return streamclient.stream_url(self.kubelet.api, kind, self.name, container, command, **streams)

    @contextlib.contextmanager
    def streaming_connections(self) -> Iterator[list[str]]:
        """The streaming connections pycrid accepted meanwhile, as it logs them (its transport and
        protocol), once the block is done."""
        with open(self.pycrid_log, "rb") as log:
            log.seek(0, os.SEEK_END)
            seen: list[str] = []
            yield seen
            seen += re.findall(r'msg="streaming (\w+: [^"]*)"', log.read().decode(errors="replace"))


@pytest.fixture(scope="module")
def pod(module_kubelet: StandaloneKubelet, pycrid: Daemon) -> Iterator[Pod]:
    name = f"streaming-{secrets.token_hex(3)}"
    manifest = module_kubelet.write_manifest(streaming_pod(name))
    pod_name = module_kubelet.static_pod_name(name)

    def status() -> dict[str, Any] | None:
        return pod_in(module_kubelet.api.json("/pods"), pod_name)

    wait_for("the pod running", lambda: running(status(), CONTAINERS), 60, module_kubelet.log_tail)
    yield Pod(module_kubelet, pod_name, pycrid.log_path)
    # Every session ended with its stream: none took its container down with it.
    found = status()
    manifest.unlink()
    assert found is not None
    restarts = {n: (c["restartCount"], list(c["state"])) for n, c in container_statuses(found).items()}
    assert restarts == dict.fromkeys(CONTAINERS, (0, ["running"])), restarts


def ids(transports: tuple[Transport, ...]) -> list[str]:
    return [t.name for t in transports]


@pytest.mark.parametrize("transport", EXEC_TRANSPORTS, ids=ids(EXEC_TRANSPORTS))
def test_exec_output_and_exit_code(pod: Pod, transport: Transport) -> None:
    url = pod.url("exec", "shell", ("sh", "-c", "echo out; echo err >&2; exit 3"), stdout=True, stderr=True)
    with pod.streaming_connections() as pycrid_saw:
        run = streamclient.run("exec", transport, url)
    assert pycrid_saw == [f"exec: {REACHES_PYCRID[transport]}"]
    # client-go makes its exit error only of a NonZeroExitCode status carrying the code.
    assert (run.returncode, run.stdout) == (3, b"out\n"), run
    assert run.stderr == b"err\nstreamclient: command exited with code 3\n", run


@pytest.mark.parametrize("transport", EXEC_TRANSPORTS, ids=ids(EXEC_TRANSPORTS))
def test_exec_stdin_to_its_end(pod: Pod, transport: Transport) -> None:
    data = b"".join(b"line %d\n" % n for n in range(20000))  # ~200 KB: more than any flow-control window
    # v4 has no way to end the input alone (v5's close signal, SPDY's half-close): the command
    # reads the known length instead.
    reader = f"head -c {len(data)}" if transport is V4 else "cat"
    url = pod.url("exec", "shell", ("sh", "-c", f"{reader} | sha256sum"), stdin=True, stdout=True, stderr=True)
    with pod.streaming_connections() as pycrid_saw:
        run = streamclient.run("exec", transport, url, stdin=data)
    assert pycrid_saw == [f"exec: {REACHES_PYCRID[transport]}"]
    assert run.returncode == 0, run
    assert run.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), run


@pytest.mark.parametrize("transport", EXEC_TRANSPORTS, ids=ids(EXEC_TRANSPORTS))
def test_exec_tty_resize(pod: Pod, transport: Transport) -> None:
    # Prints the terminal's size whenever it changes, until it is 33x111; then echoes a line typed.
    script = ('last=; while :; do s=$(stty size); [ "$s" != "$last" ] && echo "size $s" && last=$s; '
              '[ "$s" = "33 111" ] && break; sleep 0.1; done; read line; echo "got $line"; exit 7')
    url = pod.url("exec", "shell", ("sh", "-c", script), stdin=True, stdout=True, tty=True)
    with pod.streaming_connections() as pycrid_saw, streamclient.session("exec", transport, url) as s:
        s.resize(20, 80)
        s.expect("size 20 80")
        s.resize(33, 111)
        s.expect("size 33 111")
        s.type("hello\n")
        code, out, err = s.finish()
    assert code == 7, (code, out, err)
    assert b"got hello" in out, out
    assert pycrid_saw == [f"exec: {REACHES_PYCRID[transport]}"]


@pytest.mark.parametrize("transport", EXEC_TRANSPORTS, ids=ids(EXEC_TRANSPORTS))
def test_attach_to_a_tty_container(pod: Pod, transport: Transport) -> None:
    url = pod.url("attach", "tty", stdin=True, stdout=True, tty=True)
    word = f"attached-{transport.name}"
    with pod.streaming_connections() as pycrid_saw, streamclient.session("attach", transport, url) as s:
        s.type(f"echo {word}-$((20+22))\n")
        s.expect(f"{word}-42")
        code, out, err = s.stop()
    assert code == 0, (code, out, err)
    assert pycrid_saw == [f"attach: {REACHES_PYCRID[transport]}"]


@pytest.mark.parametrize("transport", FORWARD_TRANSPORTS, ids=ids(FORWARD_TRANSPORTS))
def test_port_forward_carries_data_both_ways(pod: Pod, transport: Transport) -> None:
    blob = secrets.token_bytes(4 * 1024 * 1024)
    url = streamclient.portforward_url(pod.kubelet.api, pod.name)
    with pod.streaming_connections() as pycrid_saw, streamclient.port_forward(transport, url, ECHO_PORT) as local:
        for _ in range(2):  # one connection after another over the same forward
            assert echo(local, blob) == hashlib.sha256(blob).hexdigest()
    # SPDY carries every forwarded connection in one session; the channel framing takes a
    # WebSocket for each.
    assert pycrid_saw == [f"portforward: {FORWARD_REACHES_PYCRID[transport]}"] * (2 if transport is CHANNELS else 1)


def echo(port: int, blob: bytes) -> str:
    """Sends ``blob`` to the echo server through ``port`` while reading it back; the digest of what
    came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        def send() -> None:
            with contextlib.suppress(OSError):  # a connection cut short shows in what comes back
                conn.sendall(blob)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        digest, received = hashlib.sha256(), 0
        while received < len(blob):
            data = conn.recv(65536)
            assert data, f"the connection ended after {received} of {len(blob)} bytes"
            digest.update(data)
            received += len(data)
        sender.join()
        return digest.hexdigest()
