"""SIGTERM and SIGINT, waited for by the main thread on a pipe (signal.set_wakeup_fd).

Not on a threading.Event set by a Python handler: the kernel delivers a process's signal to any of
its threads, and one delivered to a server thread interrupts no lock wait of the main thread, whose
handler then runs only when something else wakes it (a stop that hung until SIGKILL). The C-level
handler writes every signal's number to the wakeup pipe, whichever thread took it.
"""
from __future__ import annotations

import os
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Installed in the main thread before anything may stop us: from then on the default action
    (death, the socket left behind) no longer applies, and a signal is kept until wait()."""

    def __init__(self) -> None:
        self._read, write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(write, False)  # the C handler must never block on a full pipe
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            signal.signal(sig, _noted)

    def wait(self) -> signal.Signals:
        """Blocks until SIGTERM or SIGINT arrives (or arrived since the install)."""
        while True:
            for number in os.read(self._read, 64):
                if number in STOP_SIGNALS:
                    return signal.Signals(number)


def _noted(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do, the wakeup pipe carries the signal."""
