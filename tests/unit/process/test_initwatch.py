"""The starter's side of the init phase protocol (runtime/process/protocol.py): init's "ready"
carries the user it became, then EOF means it exec'd; anything else is a failure."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from runtime.errors import Internal, InvalidArgument
from runtime.process import protocol
from runtime.process.starter import wait_for_exec


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    starter, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield starter, init
    starter.close()
    init.close()


def test_ready_then_eof_gives_the_user_init_became(pair) -> None:
    starter, init = pair
    init.send(protocol.ready(1000, 1000, (1000, 1234, 50000)))
    init.close()
    assert wait_for_exec(starter) == (-1, {"uid": 1000, "gid": 1000, "groups": [1000, 1234, 50000]})


def test_a_terminal_comes_first(pair) -> None:
    starter, init = pair
    r, w = os.pipe()
    socket.send_fds(init, [protocol.TERMINAL], [r])
    os.close(r)
    init.send(protocol.ready(0, 0, (0,)))
    init.close()
    terminal, user = wait_for_exec(starter)
    try:
        assert terminal >= 0 and user == {"uid": 0, "gid": 0, "groups": [0]}
    finally:
        os.close(terminal)
        os.close(w)


def test_eof_before_ready_is_a_failed_set_up(pair) -> None:
    starter, init = pair
    init.close()
    with pytest.raises(Internal, match="exited during set-up"):
        wait_for_exec(starter)


def test_a_failure_after_ready_is_reported_with_its_class(pair) -> None:
    starter, init = pair
    init.send(protocol.ready(0, 0, ()))
    protocol.send(init, {"error": "no such file", "phase": "exec", "error_class": "NotFound"})
    with pytest.raises(InvalidArgument, match="container init failed at exec: no such file"):
        wait_for_exec(starter)


def test_the_pauses_bare_ready_is_not_a_container_inits(pair) -> None:
    starter, init = pair
    init.send(protocol.READY)
    init.close()
    with pytest.raises(Internal, match="unexpected b'ready'"):
        wait_for_exec(starter)


def test_init_marks_reach_the_starter_with_its_ready(pair) -> None:
    starter, init = pair
    init.send(protocol.ready(0, 0, (), [("init.rootfs", 12.5), ("init.security", 13.0)]))
    init.close()
    marks: list[tuple[str, float]] = [("starter.spec", 10.0)]
    assert wait_for_exec(starter, marks) == (-1, {"uid": 0, "gid": 0, "groups": []})
    assert marks == [("starter.spec", 10.0), ("init.rootfs", 12.5), ("init.security", 13.0)]
