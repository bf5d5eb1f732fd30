"""bare_fork: a fork without the interpreter's at-fork hooks, set_handler: signal.signal without
its enum, and which children's exits Children reports (runtime/process/children.py)."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest

from runtime.process.children import DEFAULT, IGNORE, Children, bare_fork, set_handler

_HOOK_RAN = [False]
# For the life of the test process; it only sets a flag, in children.
os.register_at_fork(after_in_child=lambda: _HOOK_RAN.__setitem__(0, True))


def _child_reports(fork: Callable[[], int]) -> tuple[int, bool]:
    """Forks with ``fork``; the child reports whether the hook ran and exits 7: (exit code, ran)."""
    r, w = os.pipe()
    pid = fork()
    if pid == 0:
        os.write(w, b"1" if _HOOK_RAN[0] else b"0")
        os._exit(7)
    os.close(w)
    try:
        ran = os.read(r, 1) == b"1"
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), ran


def test_bare_fork_runs_no_at_fork_hook() -> None:
    assert _child_reports(bare_fork) == (7, False)


def test_os_fork_runs_it() -> None:
    """The hook is live: what bare_fork skips, os.fork runs."""
    assert _child_reports(os.fork) == (7, True)


@pytest.fixture
def usr1() -> Iterator[None]:
    before = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, before)


@pytest.mark.usefixtures("usr1")
def test_set_handler_installs_a_function_ignore_and_default_as_signal_signal_does() -> None:
    got: list[int] = []
    set_handler(signal.SIGUSR1, lambda signum, _: got.append(signum))
    signal.raise_signal(signal.SIGUSR1)
    assert got == [signal.SIGUSR1]
    set_handler(signal.SIGUSR1, IGNORE)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
    signal.raise_signal(signal.SIGUSR1)  # ignored: the test goes on
    set_handler(signal.SIGUSR1, DEFAULT)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_child_of_children_fork_has_the_default_handlers_back() -> None:
    """What its parent set (a pod monitor ignores SIGTERM) is not its child's."""
    before = signal.getsignal(signal.SIGTERM)
    set_handler(signal.SIGTERM, IGNORE)
    r, w = os.pipe()
    try:
        pid = Children().fork(b"t-handlers", lambda: os.write(w, b"1" if signal.getsignal(signal.SIGTERM) ==
                                                                    signal.SIG_DFL else b"0") and 0, keep=(w,))
        os.close(w)
        assert os.read(r, 1) == b"1"
        os.waitpid(pid, 0)
    finally:
        os.close(r)
        signal.signal(signal.SIGTERM, before)


def _wait_exited(pid: int) -> None:
    """Until ``pid`` has exited, leaving it to be reaped."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def test_only_a_reported_child_s_exit_is_handed_back() -> None:
    children = Children()
    helper = children.fork(b"t-helper", lambda: 3, keep=())
    reported = children.fork(b"t-reported", lambda: 4, keep=(), reported=True)
    _wait_exited(helper)
    _wait_exited(reported)
    assert [(pid, os.waitstatus_to_exitcode(status)) for pid, status in children.reap()] == [(reported, 4)]


def test_a_forgotten_child_is_reaped_unreported_whether_it_ended_before_or_after() -> None:
    children = Children()
    before = children.fork(b"t-before", lambda: 5, keep=(), reported=True)
    _wait_exited(before)
    [(pid, status)] = children.reap()
    children.remember(pid, status)  # an exit nobody claimed yet, as the pod monitor keeps it
    children.forget(before)
    assert children.exited_early(before) is None
    after = children.fork(b"t-after", lambda: 6, keep=(), reported=True)
    children.forget(after)
    _wait_exited(after)
    assert children.reap() == []
    assert children.state()["helpers"] == []  # reaped, so nothing of it is kept
