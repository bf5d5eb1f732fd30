"""Exec, attach and port-forward as people use them: crictl over SPDY and over WebSocket, with a
real terminal (a pty) where crictl wants one (issue 12)."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import Daemon, crictl
from tests.e2e.workloads import Pods, container_config, pod_config, unique
from tests.ports import free_port

TRANSPORTS = ("spdy", "websocket")
BLOB = 100 * 1024 * 1024


def crictl_env(daemon: Daemon) -> dict[str, str]:
    return dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=daemon.endpoint, IMAGE_SERVICE_ENDPOINT=daemon.endpoint)


class Terminal:
    """crictl run on a pseudo-terminal of ours, sized rows x columns, as a person's shell would."""

    def __init__(self, daemon: Daemon, args: list[str], rows: int = 40, columns: int = 132) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(["crictl", *args], stdin=slave, stdout=slave, stderr=slave,
                                        env=crictl_env(daemon), start_new_session=True)
        os.close(slave)
        self.output = b""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, wanted: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while wanted.encode() not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {wanted!r}; got {self.output!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # crictl exited: its terminal is gone
                    break
        assert wanted.encode() in self.output, f"never saw {wanted!r}; got {self.output!r}"
        return self.output.decode(errors="replace")

    def close(self) -> int:
        try:
            return self.process.wait(15)
        finally:
            os.close(self.master)


@pytest.fixture(scope="module")
def shell(pycrid: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pods, str, str]]:
    """One pod with a long-running container for exec, and its config for more containers."""
    crictl(pycrid, "pull", "busybox:1")
    pods = Pods(pycrid, tmp_path_factory.mktemp("streaming"))
    pod, path = pods.run(pod_config(unique("stream"), pods.log_dir))
    pods.create(pod, path, container_config("sleeper", ["sleep", "3600"]))
    yield pods, pod, path
    pods.remove_all()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_streams_output_and_the_exit_code(pycrid: Daemon, shell, transport: str) -> None:
    pods, pod, path = shell
    ctr = _sleeper(pycrid, pod)
    out = crictl(pycrid, "exec", "-r", transport, ctr, "sh", "-c", "echo out; echo err >&2").stdout
    assert out.split() == ["out", "err"] or out.split() == ["out"], out
    failed = crictl(pycrid, "exec", "-r", transport, ctr, "sh", "-c", "exit 3", check=False)
    assert failed.returncode != 0 and "exit code 3" in failed.stderr, failed.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_i_takes_stdin_from_a_pipe_to_its_end(pycrid: Daemon, shell, transport: str) -> None:
    _, pod, _ = shell
    ctr = _sleeper(pycrid, pod)
    data = "".join(f"line {n}\n" for n in range(20000))  # ~200 KB: more than any window
    run = subprocess.run(["crictl", "exec", "-i", "-r", transport, ctr, "sh", "-c", "cat | sha256sum"],
                         input=data, capture_output=True, text=True, env=crictl_env(pycrid), timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == hashlib.sha256(data.encode()).hexdigest()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_it_gets_a_terminal_of_the_clients_size(pycrid: Daemon, shell, transport: str) -> None:
    _, pod, _ = shell
    ctr = _sleeper(pycrid, pod)
    term = Terminal(pycrid, ["exec", "-it", "-r", transport, ctr, "sh"], rows=37, columns=111)
    try:
        term.type("tty; stty size; exit 7\n")
        text = term.expect("37 111")
        assert "/dev/pts/" in text, text
    finally:
        code = term.close()
    assert code != 0, "the exit code 7 was lost"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_to_a_tty_container(pycrid: Daemon, shell, transport: str) -> None:
    pods, pod, path = shell
    ctr = pods.create(pod, path, container_config(f"tty-{transport}", ["sh"], tty=True, stdin=True))
    term = Terminal(pycrid, ["attach", "-it", "-r", transport, ctr])
    try:
        time.sleep(0.5)  # attach takes a moment to reach the container's terminal
        term.type("echo attached-$((20+22))\n")
        term.expect("attached-42")
        term.type("exit 0\n")
    finally:
        term.close()
    deadline = time.monotonic() + 10
    while json.loads(crictl(pycrid, "inspect", ctr).stdout)["status"]["state"] != "CONTAINER_EXITED":
        assert time.monotonic() < deadline, "the attached shell did not exit"
        time.sleep(0.1)
    assert "attached-42" in crictl(pycrid, "logs", ctr).stdout, "the CRI log missed the terminal's output"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_forward_carries_100_mb_intact(pycrid: Daemon, shell, transport: str) -> None:
    pods, pod, path = shell
    remote = 8080 + TRANSPORTS.index(transport)  # the pod's containers share its network
    server = pods.create(pod, path, container_config(f"blob-{transport}", ["sh", "-c",
        f"head -c {BLOB} /dev/urandom > /tmp/blob && sha256sum /tmp/blob > /tmp/sum.new && mv /tmp/sum.new /tmp/sum && "
        f"while true; do nc -l -p {remote} < /tmp/blob; done"]))
    deadline = time.monotonic() + 60
    while crictl(pycrid, "exec", server, "cat", "/tmp/sum", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the blob was never made"
        time.sleep(0.5)
    want = crictl(pycrid, "exec", server, "cat", "/tmp/sum").stdout.split()[0]
    local = free_port()
    forwarder = subprocess.Popen(["crictl", "port-forward", "-r", transport, pod, f"{local}:{remote}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=crictl_env(pycrid))
    try:
        got, received, started = hashlib.sha256(), 0, 0.0
        for _ in range(100):  # until crictl listens
            try:
                conn = socket.create_connection(("127.0.0.1", local), timeout=30)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("crictl port-forward never listened")
        with conn:
            started = time.monotonic()
            while chunk := conn.recv(1 << 20):
                got.update(chunk)
                received += len(chunk)
        seconds = time.monotonic() - started
        print(f"port-forward over {transport}: {received / seconds / 1e6:.0f} MB/s")
        assert received == BLOB and got.hexdigest() == want
    finally:
        forwarder.terminate()
        forwarder.wait(10)


def test_a_port_without_a_listener_is_an_error_not_a_hang(pycrid: Daemon, shell) -> None:
    _, pod, _ = shell
    local = free_port()
    forwarder = subprocess.Popen(["crictl", "port-forward", pod, f"{local}:9"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=crictl_env(pycrid))
    try:
        for _ in range(100):
            try:
                conn = socket.create_connection(("127.0.0.1", local), timeout=10)
                break
            except OSError:
                time.sleep(0.1)
        with conn:
            assert conn.recv(1) == b"", "a connection to a port nobody listens on carried data"
    finally:
        forwarder.terminate()
        out = forwarder.communicate(timeout=10)[0].decode()
    assert "connection refused" in out.lower() or "error forwarding port 9" in out, out


def _sleeper(daemon: Daemon, pod: str) -> str:
    listed = json.loads(crictl(daemon, "ps", "-o", "json", "-p", pod, "--name", "sleeper").stdout)
    return listed["containers"][0]["id"]
