"""The pod monitor's side of the init phase protocol (runtime/process/initwatch.py), fed one
message at a time as its loop reads them: init's "ready" carries the user it became, then EOF
means it exec'd; a held init says "created" first; anything else is a failure."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound
from runtime.process import protocol
from runtime.process.initwatch import CREATED, EXECED, WAITING, InitWatch


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    monitor, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield monitor, init
    monitor.close()
    init.close()


def feed(watch: InitWatch, monitor: socket.socket) -> str:
    """Reads init's next message as the monitor's loop does, and hands it to ``watch``."""
    data, fds, _, _ = socket.recv_fds(monitor, protocol.MAX_MESSAGE, protocol.MAX_FDS)
    return watch.take(data, fds)


def test_ready_then_eof_gives_the_user_init_became(pair) -> None:
    monitor, init = pair
    watch = InitWatch()
    init.send(protocol.ready(1000, 1000, (1000, 1234, 50000)))
    init.close()
    assert feed(watch, monitor) == WAITING
    assert feed(watch, monitor) == EXECED
    assert watch.user == {"uid": 1000, "gid": 1000, "groups": [1000, 1234, 50000]} and watch.terminal == -1


def test_a_terminal_comes_first(pair) -> None:
    monitor, init = pair
    watch = InitWatch()
    r, w = os.pipe()
    socket.send_fds(init, [protocol.TERMINAL], [r])
    os.close(r)
    init.send(protocol.ready(0, 0, (0,)))
    init.close()
    assert [feed(watch, monitor) for _ in range(3)] == [WAITING, WAITING, EXECED]
    terminal = watch.take_terminal()
    try:
        assert terminal >= 0 and watch.user == {"uid": 0, "gid": 0, "groups": [0]} and watch.terminal == -1
        os.write(w, b"x")
        assert os.read(terminal, 1) == b"x"
    finally:
        os.close(terminal)
        os.close(w)


def test_close_lets_go_of_a_terminal_not_taken(pair) -> None:
    monitor, init = pair
    watch = InitWatch()
    r, w = os.pipe()
    socket.send_fds(init, [protocol.TERMINAL], [r])
    feed(watch, monitor)
    held = watch.terminal
    watch.close()
    with pytest.raises(OSError):
        os.fstat(held)
    os.close(r)
    os.close(w)


def test_eof_before_ready_is_a_failed_set_up(pair) -> None:
    monitor, init = pair
    init.close()
    with pytest.raises(Internal, match="exited during set-up"):
        feed(InitWatch(), monitor)


def test_a_failure_is_reported_with_its_class(pair) -> None:
    monitor, init = pair
    watch = InitWatch()
    init.send(protocol.ready(0, 0, ()))
    protocol.send(init, {"error": "no such file", "phase": "exec", "error_class": "NotFound"})
    assert feed(watch, monitor) == WAITING
    with pytest.raises(InvalidArgument, match="container init failed at exec: no such file"):
        feed(watch, monitor)


def test_a_failure_of_another_class_is_internal(pair) -> None:
    monitor, init = pair
    protocol.send(init, {"error": "boom", "phase": "rootfs", "error_class": "Unavailable"})
    with pytest.raises(Internal, match="container init failed at rootfs: boom"):
        feed(InitWatch(), monitor)


def test_the_pauses_bare_ready_is_not_a_container_inits(pair) -> None:
    monitor, init = pair
    init.send(protocol.READY)
    with pytest.raises(Internal, match="unexpected b'ready'"):
        feed(InitWatch(), monitor)


def test_what_is_not_json_is_unexpected(pair) -> None:
    monitor, init = pair
    init.send(b"{not json")
    with pytest.raises(Internal, match="unexpected"):
        feed(InitWatch(), monitor)


def test_init_marks_follow_ours(pair) -> None:
    monitor, init = pair
    watch = InitWatch(marks=[("monitor.fork", 10.0)])
    init.send(protocol.ready(0, 0, (), [("init.rootfs", 12.5), ("init.security", 13.0)]))
    init.close()
    assert [feed(watch, monitor) for _ in range(2)] == [WAITING, EXECED]
    assert watch.marks == [("monitor.fork", 10.0), ("init.rootfs", 12.5), ("init.security", 13.0)]


def test_a_held_init_says_created_then_ready_once_let_go(pair) -> None:
    monitor, init = pair
    watch = InitWatch(hold=True)
    init.send(protocol.created([("init.user", 5.0)]))
    assert feed(watch, monitor) == CREATED
    assert watch.marks == [("init.user", 5.0)] and not watch.hold
    init.send(protocol.ready(0, 0, (), [("init.go", 7.0)]))
    init.close()
    assert [feed(watch, monitor) for _ in range(2)] == [WAITING, EXECED]


def test_created_is_a_held_init_s_alone(pair) -> None:
    monitor, init = pair
    init.send(protocol.created([]))
    with pytest.raises(Internal, match="unexpected"):
        feed(InitWatch(), monitor)


def test_created_comes_once(pair) -> None:
    monitor, init = pair
    watch = InitWatch(hold=True)
    init.send(protocol.created([]))
    init.send(protocol.created([]))
    assert feed(watch, monitor) == CREATED
    with pytest.raises(Internal, match="unexpected"):
        feed(watch, monitor)


def test_our_own_failure_is_told_when_init_ends_without_a_report(pair) -> None:
    monitor, init = pair
    watch = InitWatch(failed=NotFound("cgroup /x: does not exist"))
    init.close()
    with pytest.raises(NotFound, match="cgroup /x"):
        feed(watch, monitor)


def test_init_s_own_report_says_better_than_our_failure(pair) -> None:
    """Init failed first (and exited): joining its cgroup then fails too, for a lesser reason."""
    monitor, init = pair
    watch = InitWatch(failed=NotFound("cgroup /x: does not exist"))
    protocol.send(init, {"error": "bad profile", "phase": "seccomp", "error_class": "FailedPrecondition"})
    init.close()
    with pytest.raises(FailedPrecondition, match="failed at seccomp: bad profile"):
        feed(watch, monitor)


def test_read_takes_what_is_queued_up_to_the_news(pair) -> None:
    monitor, init = pair
    monitor.setblocking(False)
    watch = InitWatch(hold=True)
    assert watch.read(monitor) == WAITING  # nothing sent yet
    r, w = os.pipe()
    socket.send_fds(init, [protocol.TERMINAL], [r])
    os.close(r)
    init.send(protocol.created([]))
    init.send(protocol.ready(0, 0, ()))
    assert watch.read(monitor) == CREATED and watch.terminal >= 0
    init.close()
    assert watch.read(monitor) == EXECED and watch.user == {"uid": 0, "gid": 0, "groups": []}
    watch.close()
    os.close(w)


def test_read_gets_a_report_sent_before_init_closed_on_a_message_of_ours(pair) -> None:
    """The kernel's once-only ECONNRESET (init closed with our "joined" unread) comes ahead of it."""
    monitor, init = pair
    monitor.setblocking(False)
    monitor.send(protocol.JOINED)
    protocol.send(init, {"error": "boom", "phase": "seccomp"})
    init.close()
    with pytest.raises(Internal, match="failed at seccomp: boom"):
        InitWatch().read(monitor)


def test_an_error_without_a_phase_keeps_its_own_words_and_class(pair) -> None:
    """init could not begin (its spec, its cgroup's files): no set-up step failed."""
    monitor, init = pair
    protocol.send(init, protocol.error_message(NotFound("cgroup /x: does not exist")))
    with pytest.raises(NotFound) as raised:
        feed(InitWatch(), monitor)
    assert str(raised.value) == "cgroup /x: does not exist"
