"""hack/kube/streamclient (client-go's exec, attach and port-forward clients, as kubectl uses them)
run against a kubelet's /exec, /attach and /portForward endpoints."""
from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from tests.kubelet.api import KubeletAPI
from tests.kubelet.release import binary


@dataclass(frozen=True)
class Transport:
    """How the client talks to the kubelet: streamclient's -transport, and for WebSocket the
    subprotocols it offers (client-go's default is v5.channel.k8s.io alone)."""

    name: str
    flag: str
    protocols: str = ""

    def args(self) -> list[str]:
        return ["-transport", self.flag, *(["-protocols", self.protocols] if self.protocols else [])]


def stream_url(api: KubeletAPI, kind: str, pod: str, container: str, command: Sequence[str] = (),
               stdin: bool = False, stdout: bool = True, stderr: bool = False, tty: bool = False) -> str:
    """The kubelet URL for an exec or attach, with the query kubectl sends through the API server."""
    query = [("command", c) for c in command]
    query += [(name, "1") for name, on in (("input", stdin), ("output", stdout), ("error", stderr), ("tty", tty))
              if on]
    return f"https://{api.host}:{api.port}/{kind}/default/{quote(pod)}/{quote(container)}?{urlencode(query)}"


def portforward_url(api: KubeletAPI, pod: str) -> str:
    return f"https://{api.host}:{api.port}/portForward/default/{quote(pod)}"


def run(kind: str, transport: Transport, url: str, stdin: bytes = b"", timeout: float = 60.0,
        ) -> subprocess.CompletedProcess[bytes]:
    """One exec or attach to its end: its exit status, output and errors."""
    return subprocess.run([str(binary("streamclient")), kind, *transport.args(), url], input=stdin,
                          capture_output=True, timeout=timeout)


class Session:
    """An exec or attach the test talks to as it goes: typing, terminal sizes, reading its output."""

    def __init__(self, kind: str, transport: Transport, url: str) -> None:
        self._sizes_read, self._sizes = os.pipe()
        self.process = subprocess.Popen(
            [str(binary("streamclient")), kind, *transport.args(), "-sizes-fd", str(self._sizes_read), url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(self._sizes_read,))
        os.close(self._sizes_read)
        self.output = b""

    def type(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def resize(self, rows: int, columns: int) -> None:
        os.write(self._sizes, f"{rows} {columns}\n".encode())

    def expect(self, wanted: str, timeout: float = 20.0) -> None:
        """Reads the output until ``wanted`` is in it."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while wanted.encode() not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {wanted!r}; got {self.output!r}"
            if select.select([self.process.stdout], [], [], left)[0]:
                data = os.read(self.process.stdout.fileno(), 65536)
                assert data, f"the output ended before {wanted!r}; got {self.output!r}: {self.finish()}"
                self.output += data

    def finish(self, timeout: float = 20.0) -> tuple[int, bytes, bytes]:
        """Waits for the client's end (closing its input and terminal sizes first): exit status,
        all the output and the errors."""
        with contextlib.suppress(OSError):
            os.close(self._sizes)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, self.output + out, err

    def stop(self, timeout: float = 20.0) -> tuple[int, bytes, bytes]:
        """Ends the stream from our side (as a person's Ctrl-C on kubectl does)."""
        self.process.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@contextlib.contextmanager
def session(kind: str, transport: Transport, url: str) -> Iterator[Session]:
    made = Session(kind, transport, url)
    try:
        yield made
    finally:
        made.kill()


@contextlib.contextmanager
def port_forward(transport: Transport, url: str, remote_port: int, timeout: float = 20.0) -> Iterator[int]:
    """A running port-forward to ``remote_port`` in the pod; yields the local port. Afterwards the
    client must stop cleanly on SIGTERM, having reported no error; a failure in the block carries
    what it reported."""
    process = subprocess.Popen([str(binary("streamclient")), "portforward", *transport.args(), url,
                                str(remote_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop() -> bytes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.communicate(timeout=timeout)[1]

    try:
        assert process.stdout is not None
        ready = select.select([process.stdout], [], [], timeout)[0]
        line = process.stdout.readline().decode() if ready else ""
        assert line, f"port-forward not listening after {timeout} s"
        local, remote = (int(p) for p in line.split())
        assert remote == remote_port, line
        yield local
    except BaseException as e:
        e.add_note(f"the port-forward client said: {stop().decode(errors='replace')}")
        raise
    err = stop()
    assert process.returncode == 0, f"port-forward exited with {process.returncode}: {err!r}"
    assert err == b"", f"port-forward reported errors: {err.decode(errors='replace')}"
