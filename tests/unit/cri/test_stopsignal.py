"""The agent's stop: SIGTERM reaches the main thread's wait even when the kernel delivers it to
another thread (the hang CI saw: the main thread slept in a lock wait no signal interrupted)."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from cri.stopsignal import StopSignals


@pytest.fixture
def stop_signals() -> Iterator[StopSignals]:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield StopSignals()
    finally:
        signal.set_wakeup_fd(-1)
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_sigterm_taken_by_another_thread_ends_the_wait(stop_signals: StopSignals) -> None:
    parked = threading.Event()
    other = threading.Thread(target=parked.wait, daemon=True)
    other.start()
    signal.pthread_kill(other.ident or 0, signal.SIGTERM)
    # Should the wait miss it, this SIGINT (to the main thread) ends it instead, and the test fails.
    watchdog = threading.Timer(5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    watchdog.start()
    try:
        assert stop_signals.wait() == signal.SIGTERM
    finally:
        watchdog.cancel()
        parked.set()


def test_a_signal_before_the_wait_is_kept(stop_signals: StopSignals) -> None:
    signal.raise_signal(signal.SIGINT)  # not a KeyboardInterrupt: the default action is replaced
    assert stop_signals.wait() == signal.SIGINT
