"""An agent waiting for the fork server it asked to re-exec into its build (client.wait_for_build):
the new code answers only once it has started, rehearsal included, which in an emulated guest can
take longer than one request's timeout; the wait is bounded by its own timeout alone."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import Unavailable
from runtime.process import client, protocol, sockpath
from runtime.process.build import build_id
from runtime.process.client import ForkServer, wait_for_build

PID = 4242


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[str, list[float]]]:
    """A listener that answers each hello as ``PID`` of this build after ``delay[0]`` seconds."""
    path = str(tmp_path / "fork.sock")
    listener = sockpath.listen(path)
    delay = [0.0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                protocol.receive(conn)
                time.sleep(delay[0])
                with contextlib.suppress(OSError):  # the client may have given up
                    protocol.send(conn, {"pid": PID, "build": build_id(), "protocol": protocol.PROTOCOL})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, delay
    stop.set()
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(5)


def test_an_answer_later_than_one_request_s_timeout_still_ends_the_wait(
        slow_server: tuple[str, list[float]], monkeypatch: pytest.MonkeyPatch) -> None:
    path, delay = slow_server
    monkeypatch.setattr(client, "REQUEST_TIMEOUT", 0.2)
    delay[0] = 0.6
    wait_for_build(ForkServer(path), PID, timeout=5.0)


def test_no_answer_within_the_wait_s_timeout_is_unavailable(slow_server: tuple[str, list[float]]) -> None:
    path, delay = slow_server
    delay[0] = 3.0
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not come back"):
        wait_for_build(ForkServer(path), PID, timeout=0.5)
    assert time.monotonic() - started < 2.5
