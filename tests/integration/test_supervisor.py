"""The agent's watch over its helpers, with real processes: deaths reported by key, a dead fork server
restarted at once (and reported down while it cannot be), pids never mistaken after reuse."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import Unavailable
from runtime.linux import proc
from runtime.linux.proc import start_time
from runtime.process.client import ForkServer, connect_or_start, start
from runtime.process.supervisor import Supervisor
from tests.timescale import TIMEOUT_SCALE


class Deaths:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.seen = threading.Event()

    def __call__(self, key: str) -> None:
        self.keys.append(key)
        self.seen.set()


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[tuple[Supervisor, Deaths]]:
    server = connect_or_start(str(tmp_path / "fork.sock"), str(tmp_path / "fork.log"))
    deaths = Deaths()
    supervisor = Supervisor(server, str(tmp_path / "fork.log"), deaths)
    supervisor.start()
    yield supervisor, deaths
    supervisor.stop()
    ForkServer(server.path).shutdown()


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_a_watched_helper_that_dies_is_reported_by_its_key(watch: tuple[Supervisor, Deaths]) -> None:
    supervisor, deaths = watch
    helper = sleeper()
    assert supervisor.watch("monitor:pod-a", helper.pid, start_time(helper.pid) or 0)
    helper.kill()
    helper.wait()
    assert deaths.seen.wait(2) and deaths.keys == ["monitor:pod-a"]
    assert dict(supervisor.state().deaths)["monitor"] == 1


def test_a_container_init_that_dies_is_reported_but_is_no_helper_death(watch: tuple[Supervisor, Deaths]) -> None:
    supervisor, deaths = watch
    init = sleeper()
    assert supervisor.watch("container:c-1", init.pid, start_time(init.pid) or 0)
    init.kill()
    init.wait()
    assert deaths.seen.wait(2) and deaths.keys == ["container:c-1"]
    assert dict(supervisor.state().deaths) == {"forkserver": 0, "monitor": 0, "pause": 0}


def test_an_unwatched_helper_dies_quietly(watch: tuple[Supervisor, Deaths]) -> None:
    supervisor, deaths = watch
    helper = sleeper()
    supervisor.watch("pause:pod-b", helper.pid, start_time(helper.pid) or 0)
    supervisor.unwatch("pause:pod-b")
    helper.kill()
    helper.wait()
    assert not deaths.seen.wait(0.5)


def test_a_pid_that_is_not_the_recorded_process_is_not_watched(watch: tuple[Supervisor, Deaths]) -> None:
    """After a restart the agent knows (pid, start time): a reused pid must not pass for the helper."""
    supervisor, _ = watch
    helper = sleeper()
    try:
        assert not supervisor.watch("monitor:pod-c", helper.pid, (start_time(helper.pid) or 0) + 1)
    finally:
        helper.kill()
        helper.wait()


def test_a_dead_fork_server_is_restarted_at_once(watch: tuple[Supervisor, Deaths]) -> None:
    supervisor, _ = watch
    old = supervisor.forkserver.ping()
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 2 * TIMEOUT_SCALE  # a fresh interpreter's start: seconds when emulated
    while True:
        try:
            if supervisor.state().up and supervisor.forkserver.ping() != old:
                break
        except Exception:  # noqa: BLE001 - down for a moment
            pass
        assert time.monotonic() < deadline, f"no new fork server within {2 * TIMEOUT_SCALE:g} s"
        time.sleep(0.01)
    assert dict(supervisor.state().deaths)["forkserver"] == 1
    assert proc.read_stat(old) is None, "the killed fork server was not reaped"


def test_a_fork_server_that_cannot_start_is_reported_down_until_it_can(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    server = connect_or_start(str(run / "fork.sock"), str(tmp_path / "fork.log"))
    supervisor = Supervisor(server, str(tmp_path / "fork.log"), Deaths())
    supervisor.start()
    try:
        pid = server.ping()
        shutil.rmtree(run)  # its socket can no longer be made
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3 * TIMEOUT_SCALE
        while supervisor.state().up:
            assert time.monotonic() < deadline, "still reported up"
            time.sleep(0.02)
        assert "fork server" in supervisor.state().message
        run.mkdir()
        deadline = time.monotonic() + 5 * TIMEOUT_SCALE
        while not supervisor.state().up:
            assert time.monotonic() < deadline, "not restarted once it could be"
            time.sleep(0.05)
        assert supervisor.forkserver.ping() > 0
    finally:
        supervisor.stop()
        ForkServer(server.path).shutdown()


def test_a_fork_server_that_answers_too_late_is_not_left_running(tmp_path: Path) -> None:
    path = str(tmp_path / "fork.sock")
    with pytest.raises(Unavailable):
        start(path, str(tmp_path / "fork.log"), timeout=0.0)  # gives up before it can answer
    time.sleep(0.5)  # long enough for a survivor to bind its socket
    survivors = [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline_names(int(pid), path)]
    assert not survivors, f"fork server(s) {survivors} left running after start() gave up"
    assert not os.path.exists(path)


def _cmdline_names(pid: int, path: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return path.encode() in f.read().split(b"\0")
    except OSError:
        return False
