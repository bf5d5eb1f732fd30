"""The pod monitor starting the pod's pause itself (runtime/process/pausestart.py and its loop in
podmonitor.py): the sync socket's words, what is recorded and answered, and that a pause that
fails, overruns its deadline or is stopped is killed and reaped without a report. The system
calls are faked (no new PID namespace here), so the pause is a child of the test process; the
real one: tests/integration/test_pod_monitor.py."""
from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import AlreadyExists
from runtime.linux import constants as k
from runtime.linux.proc import start_time
from runtime.linux.testing import FakeSyscalls
from runtime.process import podmonitor, protocol, sockpath
from runtime.process.pausestart import PauseSetUp, read_sync
from runtime.process.podmonitor import PodMonitor
from runtime.process.podrequests import Pending
from tests.unit.process.childpids import child_pids

TURNS = 50
STARTED = 4242  # the start time a pause says with its READY


@pytest.fixture
def sync() -> Iterator[tuple[socket.socket, socket.socket]]:
    monitor, pause = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield monitor, pause
    monitor.close()
    pause.close()


def test_ready_is_the_end_of_a_set_up_without_exec_and_carries_the_pause_s_start_time(
        sync: tuple[socket.socket, socket.socket]) -> None:
    monitor, pause = sync
    set_up = PauseSetUp(-1, execs=False)
    pause.send(protocol.pause_ready(STARTED))
    assert read_sync(monitor, set_up) is True
    assert set_up.start_time == STARTED


@pytest.mark.parametrize("word", [protocol.READY, protocol.READY + b" ", protocol.READY + b" soon"])
def test_a_ready_without_a_start_time_is_a_failed_set_up(sync: tuple[socket.socket, socket.socket],
                                                         word: bytes) -> None:
    monitor, pause = sync
    pause.send(word)
    with pytest.raises(RuntimeError, match="^pause set-up failed: ready"):
        read_sync(monitor, PauseSetUp(-1, execs=False))


def test_with_the_pause_binary_ready_waits_for_the_eof_of_its_exec(sync: tuple[socket.socket, socket.socket]) -> None:
    monitor, pause = sync
    set_up = PauseSetUp(-1, execs=True)
    pause.send(protocol.pause_ready(STARTED))
    assert read_sync(monitor, set_up) is False
    pause.close()
    assert read_sync(monitor, set_up) is True


def test_a_failed_exec_after_ready_is_a_failed_set_up(sync: tuple[socket.socket, socket.socket]) -> None:
    monitor, pause = sync
    set_up = PauseSetUp(-1, execs=True)
    pause.send(protocol.pause_ready(STARTED))
    read_sync(monitor, set_up)
    pause.send(b"FileNotFoundError: [Errno 2] No such file or directory: '/pause'")
    with pytest.raises(RuntimeError, match=r"^pause set-up failed: FileNotFoundError: .*'/pause'$"):
        read_sync(monitor, set_up)


@pytest.mark.parametrize("execs", [False, True])
def test_an_end_before_ready_is_a_failed_set_up(sync: tuple[socket.socket, socket.socket], execs: bool) -> None:
    monitor, pause = sync
    pause.close()
    with pytest.raises(RuntimeError, match="^pause set-up failed: no answer$"):
        read_sync(monitor, PauseSetUp(-1, execs=execs))


def test_a_second_ready_is_not_the_exec_s_eof(sync: tuple[socket.socket, socket.socket]) -> None:
    monitor, pause = sync
    set_up = PauseSetUp(-1, execs=True)
    pause.send(protocol.pause_ready(STARTED))
    read_sync(monitor, set_up)
    pause.send(protocol.pause_ready(STARTED))
    with pytest.raises(RuntimeError, match="pause set-up failed: ready 4242"):
        read_sync(monitor, set_up)


# --- the monitor's loop ------------------------------------------------------------------------

@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PodMonitor]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    m = PodMonitor("p1", str(tmp_path / "monitor.sock"), listener)
    m.syscalls = FakeSyscalls()
    sockpath.listen_on(listener, m.path)
    before = child_pids()
    # Idle means no child of its own left; not another suite's daemon of this process (childpids.py).
    monkeypatch.setattr(podmonitor, "has_children", lambda: bool(child_pids() - before))
    yield m
    for p in m.pending:
        p.close()
    if m.pid_namespace >= 0:
        os.close(m.pid_namespace)
    for pid in child_pids() - before:  # the test's pauses, each waiting to be killed
        m.children.kill(pid)
        os.waitpid(pid, 0)
    listener.close()
    os.close(m.wake_r)
    os.close(m.wake_w)


def turn_until(monitor: PodMonitor, done: Callable[[], bool]) -> None:
    for _ in range(TURNS):
        if done():
            return
        monitor.step(0.1)
    raise AssertionError(f"not done in {TURNS} turns")


def answer(agent: socket.socket) -> dict[str, Any]:
    message, fds = protocol.receive(agent)
    assert message is not None and fds == []
    return message


def a_pause(monitor: PodMonitor, says: Callable[[socket.socket], None], execs: bool = False,
            deadline: float = 60.0, keep: tuple[int, ...] = ()) -> tuple[int, socket.socket]:
    """A pending pause as _pause leaves it, but forked in this PID namespace: a child (holding
    ``keep`` too) that ``says`` its words on the sync socket, then waits to be killed. (Its pid,
    the agent's end.)"""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)

    def pause() -> int:
        says(theirs)
        time.sleep(60)
        return 0

    pid = monitor.children.fork(b"t-pause", pause, keep=(theirs.fileno(), *keep), reported=True)
    theirs.close()
    namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # stands for the pod's
    monitor.pending.append(Pending("pause", pid, ours, reply, time.monotonic() + deadline,
                                   pause=PauseSetUp(namespace, execs)))
    return pid, agent


def gone(pid: int) -> bool:
    """Reaped: not even a zombie is left."""
    return start_time(pid) is None


def test_a_ready_pause_is_recorded_and_the_agent_gets_its_pid_and_the_start_time_it_said(
        monitor: PodMonitor) -> None:
    pid, agent = a_pause(monitor, lambda sync: sync.send(protocol.pause_ready(STARTED)))
    turn_until(monitor, lambda: not monitor.pending)
    assert answer(agent) == {"pid": pid, "start_time": STARTED}
    assert (monitor.pause_pid, monitor.pause_alive) == (pid, True)
    assert os.readlink(f"/proc/self/fd/{monitor.pid_namespace}") == os.readlink("/proc/self/ns/pid")
    # Its exit is reported now: the pause is gone, and the pod's PID namespace with it.
    monitor.children.kill(pid)
    turn_until(monitor, lambda: not monitor.pause_alive)
    assert gone(pid)


def test_a_pause_that_execs_is_answered_only_at_the_eof_of_its_exec(monitor: PodMonitor) -> None:
    r, w = os.pipe()

    def ready_then_exec(sync: socket.socket) -> None:
        sync.send(protocol.pause_ready(STARTED))
        os.read(r, 1)
        sync.close()  # what its exec does to the close-on-exec socket

    pid, agent = a_pause(monitor, ready_then_exec, execs=True, keep=(r,))
    turn_until(monitor, lambda: monitor.pending[0].pause is not None and monitor.pending[0].pause.ready)
    monitor.step(0.1)
    assert monitor.pending and monitor.pause_pid == 0, "answered before the exec"
    os.write(w, b"x")
    os.close(w)
    os.close(r)
    turn_until(monitor, lambda: not monitor.pending)
    assert answer(agent) == {"pid": pid, "start_time": STARTED}
    assert monitor.pause_pid == pid and monitor.pause_alive


def test_a_failed_set_up_is_answered_as_before_and_its_pause_killed_and_reaped(monitor: PodMonitor) -> None:
    pid, agent = a_pause(monitor, lambda sync: sync.send(b"PermissionError: [Errno 1] Operation not permitted"))
    turn_until(monitor, lambda: not monitor.pending)
    assert answer(agent) == {"error": "RuntimeError: pause set-up failed: PermissionError: [Errno 1] "
                                      "Operation not permitted"}
    assert (monitor.pause_pid, monitor.pause_alive, monitor.pid_namespace) == (0, False, -1)
    turn_until(monitor, lambda: gone(pid))
    assert monitor.children.exited_early(pid) is None, "its exit must not be kept for a claim"


def test_a_pause_that_dies_before_ready_fails_its_set_up(monitor: PodMonitor) -> None:
    pid, agent = a_pause(monitor, lambda sync: os._exit(1))
    turn_until(monitor, lambda: not monitor.pending)
    assert answer(agent) == {"error": "RuntimeError: pause set-up failed: no answer"}
    turn_until(monitor, lambda: gone(pid))
    assert monitor.pause_pid == 0 and monitor.children.exited_early(pid) is None


def test_a_pause_past_its_deadline_is_killed_and_reaped(monitor: PodMonitor) -> None:
    pid, agent = a_pause(monitor, lambda sync: None, deadline=0.0)
    monitor.step(0.1)
    assert answer(agent)["error"] == "pause of pause: not done by its deadline; killed"
    turn_until(monitor, lambda: gone(pid))
    assert monitor.pause_pid == 0 and monitor.children.exited_early(pid) is None


def test_a_shutdown_kills_a_pending_pause_which_is_then_answered(monitor: PodMonitor) -> None:
    pid, agent = a_pause(monitor, lambda sync: None)
    monitor._stop_everything()
    turn_until(monitor, monitor.idle)
    assert answer(agent) == {"error": "RuntimeError: pause set-up failed: no answer"}
    assert gone(pid) and monitor.pause_pid == 0


def test_a_second_pause_is_refused_while_one_is_pending(monitor: PodMonitor) -> None:
    a_pause(monitor, lambda sync: None)
    with pytest.raises(AlreadyExists, match="p1 has a pause process"):
        monitor._pause(socket.socket(), {"id": "p1", "root": "/nonexistent"})


# --- _pause itself, with the system calls faked ---------------------------------------------

def test_pause_forks_pid1_between_unshare_and_restore_and_reports_its_failure(
        monitor: PodMonitor, tmp_path: Path) -> None:
    """The fake unshare makes no namespace; the fake pivot_root none either, so the pause fails
    where it changes into its root, which does not exist."""
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with agent:
        monitor._pause(reply, {"id": "p1", "root": str(tmp_path / "missing"), "namespaces": {}})
        [p] = monitor.pending
        assert start_time(p.pid) is not None  # the monitor's own child, reaped by its loop
        turn_until(monitor, lambda: not monitor.pending)
        message = answer(agent)
    assert message["error"].startswith("RuntimeError: pause set-up failed: FileNotFoundError:"), message
    assert "missing" in message["error"]
    syscalls = monitor.syscalls
    assert isinstance(syscalls, FakeSyscalls)
    [(restored, _)] = syscalls.calls_to("setns")  # the pause's own calls went to its copy of the fake
    assert syscalls.calls == [("unshare", (k.CLONE_NEWPID,)), ("setns", (restored, k.CLONE_NEWPID))]
    turn_until(monitor, lambda: gone(p.pid))
    assert monitor.pause_pid == 0


def test_a_namespace_file_that_cannot_be_opened_fails_the_set_up(monitor: PodMonitor, tmp_path: Path) -> None:
    """The pause opens the pod's namespace files itself, first thing; the monitor opens none."""
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with agent:
        monitor._pause(reply, {"id": "p1", "root": str(tmp_path), "namespaces": {"net": str(tmp_path / "net")}})
        [p] = monitor.pending
        turn_until(monitor, lambda: not monitor.pending)
        message = answer(agent)
    assert message["error"].startswith("RuntimeError: pause set-up failed: FileNotFoundError:"), message
    assert "net" in message["error"]
    turn_until(monitor, lambda: gone(p.pid))
    assert monitor.pause_pid == 0 and monitor.children.exited_early(p.pid) is None


def test_a_failed_unshare_fails_the_request(monitor: PodMonitor, tmp_path: Path) -> None:
    syscalls = monitor.syscalls
    assert isinstance(syscalls, FakeSyscalls)
    syscalls.fail("unshare", errno.EPERM)
    before = child_pids()
    with pytest.raises(OSError, match="unshare"):
        monitor._pause(socket.socket(), {"id": "p1", "root": str(tmp_path)})
    assert not monitor.pending and child_pids() == before
