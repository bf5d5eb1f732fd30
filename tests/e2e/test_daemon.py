"""The daemon as an operator meets it: crictl works, SIGTERM is prompt, the socket is guarded."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.daemon import REPO, Daemon, crictl, launch, start
from tests.timescale import TIMEOUT_SCALE


def test_crictl_version_and_info(pycrid: Daemon) -> None:
    version = crictl(pycrid, "version").stdout
    assert "RuntimeName:  pycrid" in version and "RuntimeApiVersion:  v1" in version
    info = json.loads(crictl(pycrid, "info").stdout)
    conditions = {c["type"]: c["status"] for c in info["status"]["conditions"]}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    assert info["config"]["root"] == str(pycrid.root)


def test_sigterm_stops_within_five_seconds_and_removes_the_socket(tmp_path: Path) -> None:
    daemon = start(tmp_path)
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(10) == 0
    assert time.monotonic() - started < 5
    assert not daemon.socket.exists()
    daemon.tear_down()


def test_sigterm_during_start_up_is_not_fatal_and_leaves_no_socket(tmp_path: Path) -> None:
    """A supervisor may stop the agent while it recovers, and a client may reach the socket before
    the server starts: the signal is held until start-up ends, then it stops as from running."""
    daemon = launch(tmp_path)
    process, log_path = daemon.process, daemon.log_path
    try:
        deadline = time.monotonic() + 20 * TIMEOUT_SCALE
        while not log_path.read_text():  # its first line is written while it builds the node
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20 * TIMEOUT_SCALE) == 0, log_path.read_text()[-4000:]
        assert not daemon.socket.exists()
    finally:
        daemon.stop()
        daemon.tear_down()


def test_a_second_daemon_on_a_live_socket_is_refused(tmp_path: Path) -> None:
    first = start(tmp_path)
    try:
        second = subprocess.run([sys.executable, "-m", "cri", "serve", "--config", str(first.config_path)],
                                cwd=REPO, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "live process" in second.stderr and str(first.socket) in second.stderr
        assert first.socket.exists()
        assert "pycrid" in crictl(first, "version").stdout
    finally:
        assert first.stop() == 0
        first.tear_down()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    first = start(tmp_path)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    assert first.socket.exists()  # SIGKILL leaves the socket behind
    second = start(tmp_path)
    try:
        assert "pycrid" in crictl(second, "version").stdout
    finally:
        assert second.stop() == 0
        second.tear_down()
