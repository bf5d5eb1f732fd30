"""A pod monitor's container starts, its side alone (runtime/process/podrequests.py, podmonitor.py):
it forks init itself and follows its set-up as the messages come. init here is a stand-in that
plays its part of the phase protocol (no namespaces, no root); the real one runs in
tests/integration. What is checked is the monitor's: its answers, what it records, and that
every child it forked is reaped and a failed init's exit is recorded nowhere."""
from __future__ import annotations

import json
import os
import pty
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from runtime.errors import NotFound
from runtime.linux.poll import wait_readable
from runtime.process import init, podmonitor, podrequests, protocol
from runtime.process.initspec import HOST
from runtime.process.podmonitor import PodMonitor
from tests.unit.process.childpids import child_pids

Behaviour = Callable[[socket.socket, bool], None]


def exec_at_once(sync: socket.socket, hold: bool) -> None:
    """Set up, "exec'd" (the end closes as at execve), and the "command" says hello and exits 3."""
    assert sync.recv(64) == protocol.JOINED
    if hold:
        sync.send(protocol.created([("init.user", time.monotonic())]))
        assert sync.recv(64) == protocol.GO
    sync.send(protocol.ready(1000, 1000, (1000,), [("init.security", time.monotonic())]))
    sync.close()
    os.write(1, b"hello\n")
    time.sleep(0.1)  # a terminal's output not yet read goes with its last close


def fails_at_rootfs(sync: socket.socket, hold: bool) -> None:
    protocol.send(sync, {"error": "no such layer", "phase": "rootfs", "error_class": "NotFound"})


def dies_silently(sync: socket.socket, hold: bool) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def hangs(sync: socket.socket, hold: bool) -> None:
    while True:
        signal.pause()


def sends_a_terminal(sync: socket.socket, hold: bool) -> None:
    master, slave = pty.openpty()
    socket.send_fds(sync, [protocol.TERMINAL], [master])
    os.close(master)
    os.dup2(slave, 1)
    exec_at_once(sync, hold)


def waits_for_the_cgroup(sync: socket.socket, hold: bool) -> None:
    sync.recv(64)  # the monitor, failing to move us, kills us here


def cannot_begin(sync: socket.socket, hold: bool) -> None:
    """As init.start, whose cgroup (v1: its tasks files) is gone."""
    protocol.send(sync, protocol.error_message(NotFound("cgroup /gone: does not exist")))


BEHAVIOURS: dict[str, Behaviour] = {f.__name__: f for f in (
    exec_at_once, fails_at_rootfs, dies_silently, hangs, sends_a_terminal, waits_for_the_cgroup, cannot_begin)}


def fake_init(raw: dict[str, Any], sync: socket.socket, stdio: tuple[int, int, int], cgroups: object,
              hold: bool) -> NoReturn:
    """In the monitor's child, in init.start's place: its own session, its stdio, then the part
    ``raw["args"][0]`` names; returning stands for exec'ing a command that exits 3."""
    os.setsid()
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    BEHAVIOURS[raw["args"][0]](sync, hold)
    os._exit(3)


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PodMonitor]:
    monkeypatch.setattr(init, "start", fake_init)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(tmp_path / "monitor.sock"))
    listener.listen()  # nobody connects: the loop's requests are made by calling it here
    m = PodMonitor("pod", str(tmp_path / "monitor.sock"), listener)
    before = child_pids()
    # Idle means no child of its own left; not another suite's daemon of this process (childpids.py).
    monkeypatch.setattr(podmonitor, "has_children", lambda: bool(child_pids() - before))
    yield m
    m._stop_everything()
    deadline = time.monotonic() + 5
    while not m.idle() and time.monotonic() < deadline:
        m.step(0.02)
    listener.close()
    assert m.idle(), "the monitor still waits on children or containers"
    assert child_pids() - before == set(), "a child not reaped"
    assert m.children.state()["early"] == {}, "an exit nobody claims"


def spec(tmp_path: Path, behaviour: str, **more: Any) -> dict[str, Any]:
    return {"id": behaviour, "args": [behaviour], "log_path": str(tmp_path / f"{behaviour}.log"),
            "exit_file": str(tmp_path / f"{behaviour}.exit"), "namespaces": {"pid": HOST}, **more}


def ask(m: PodMonitor, raw: dict[str, Any], op: str = "start", timeout: float = 5.0) -> dict[str, Any]:
    """The monitor's answer to ``op`` of ``raw``, stepping its loop until it comes."""
    ours, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with agent:
        m._start(ours, raw, timeout, prepare=op == "prepare")
        deadline = time.monotonic() + 10
        while not wait_readable([agent], 0) and time.monotonic() < deadline:
            m.step(0.02)
        answer, fds = protocol.receive(agent)
    assert answer is not None and fds == []
    return answer


def wait_for(m: PodMonitor, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not done() and time.monotonic() < deadline:
        m.step(0.02)
    assert done()


def test_init_exec_ing_answers_the_start_and_becomes_the_container(monitor: PodMonitor, tmp_path: Path) -> None:
    raw = spec(tmp_path, "exec_at_once")
    answer = ask(monitor, raw)
    assert answer["user"] == {"uid": 1000, "gid": 1000, "groups": [1000]} and answer["started_at"] > 0
    assert [m[0] for m in answer["marks"]] == ["monitor.request", "monitor.fork", "init.security", "monitor.report"]
    assert monitor.pending == [] and monitor.watcher.find("exec_at_once") is not None
    wait_for(monitor, lambda: os.path.exists(raw["exit_file"]))
    assert json.loads(Path(raw["exit_file"]).read_text())["exit_code"] == 3
    assert " stdout F hello" in Path(raw["log_path"]).read_text()


def test_a_prepared_init_is_held_until_its_start(monitor: PodMonitor, tmp_path: Path) -> None:
    raw = spec(tmp_path, "exec_at_once")
    prepared = ask(monitor, raw, "prepare")
    assert prepared["created"] is True
    assert [m[0] for m in prepared["marks"]] == ["monitor.request", "monitor.fork", "init.user", "monitor.report"]
    assert "exec_at_once" in monitor.prepared and monitor.pending == []
    time.sleep(0.1)
    monitor.step(0)
    assert not os.path.exists(raw["exit_file"]), "a held init runs nothing"
    started = ask(monitor, raw)
    assert started["pid"] == prepared["pid"]
    assert [m[0] for m in started["marks"]] == ["monitor.request", "monitor.go", "init.security", "monitor.report"]
    wait_for(monitor, lambda: os.path.exists(raw["exit_file"]))


def test_a_discarded_prepared_init_is_ended_and_its_exit_forgotten(monitor: PodMonitor, tmp_path: Path) -> None:
    raw = spec(tmp_path, "exec_at_once")
    pid = ask(monitor, raw, "prepare")["pid"]
    monitor._discard("exec_at_once")
    wait_for(monitor, lambda: not monitor.children.state()["helpers"])
    assert monitor.watcher.empty() and not os.path.exists(raw["exit_file"])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_init_s_failure_is_the_answer_with_its_class(monitor: PodMonitor, tmp_path: Path) -> None:
    answer = ask(monitor, spec(tmp_path, "fails_at_rootfs"))
    assert answer == {"error": "container init failed at rootfs: no such layer", "error_class": "InvalidArgument"}
    assert monitor.watcher.empty()


def test_an_init_that_dies_without_a_word_failed_its_set_up(monitor: PodMonitor, tmp_path: Path) -> None:
    answer = ask(monitor, spec(tmp_path, "dies_silently"))
    assert answer == {"error": "container init exited during set-up", "error_class": "Internal"}
    assert monitor.watcher.empty()


def test_a_start_past_its_deadline_is_killed(monitor: PodMonitor, tmp_path: Path) -> None:
    started = time.monotonic()
    answer = ask(monitor, spec(tmp_path, "hangs"), timeout=0.3)
    assert answer["error_class"] == "DeadlineExceeded" and "hangs: not done by its deadline" in answer["error"]
    assert time.monotonic() - started < 2
    assert monitor.watcher.empty()


def test_a_terminal_becomes_the_container_s_output(monitor: PodMonitor, tmp_path: Path) -> None:
    raw = spec(tmp_path, "sends_a_terminal", tty=True)
    ask(monitor, raw)
    watched = monitor.watcher.find("sends_a_terminal")
    assert watched is not None and watched.stdin.terminal and list(watched.streams.values()) == [b"stdout"]
    wait_for(monitor, lambda: os.path.exists(raw["exit_file"]))
    assert " stdout F hello" in Path(raw["log_path"]).read_text()


def test_a_cgroup_we_cannot_move_init_to_fails_the_start(monitor: PodMonitor, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """v2: the monitor moves init; when that fails, init is ended and the move's error answered."""
    class Refusing:
        def add_process(self, path: str, pid: int) -> None:
            raise NotFound(f"cgroup {path}: does not exist")

    monkeypatch.setattr(podrequests, "_V2", True)
    monkeypatch.setattr(podrequests, "_CGROUPS", Refusing())
    answer = ask(monitor, spec(tmp_path, "waits_for_the_cgroup", cgroup="/gone"))
    assert answer == {"error": "cgroup /gone: does not exist", "error_class": "NotFound"}


def test_init_s_own_failure_says_better_than_the_cgroup_s(monitor: PodMonitor, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def add_process(self, path: str, pid: int) -> None:
            time.sleep(0.2)  # init reports and exits meanwhile
            raise NotFound(f"cgroup {path}: does not exist")

    monkeypatch.setattr(podrequests, "_V2", True)
    monkeypatch.setattr(podrequests, "_CGROUPS", Refusing())
    answer = ask(monitor, spec(tmp_path, "fails_at_rootfs", cgroup="/gone"))
    assert answer["error"] == "container init failed at rootfs: no such layer"


def test_a_failure_before_init_s_set_up_is_told_as_it_is(monitor: PodMonitor, tmp_path: Path) -> None:
    """Its spec or its cgroup's files: the error and class the monitor would give for its own."""
    answer = ask(monitor, spec(tmp_path, "cannot_begin", cgroup="/gone"))
    assert answer == {"error": "cgroup /gone: does not exist", "error_class": "NotFound"}
