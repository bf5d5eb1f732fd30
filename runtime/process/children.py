"""A helper's children: forking with nothing of the parent's left open but what the child needs,
and reaping everything (as a subreaper, orphans of the pod arrive here too).

Short-lived helpers (a restore's starter, an exec child) are reaped and forgotten, and so is a
child the caller gave up on (forget: a pause whose set-up failed; end: a container init that
failed or was ended before it exec'd). Any other exit is handed back to the caller; one it does
not know yet (an orphan whose report is still unread) is remembered for a while, so that the
report finds it.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

EARLY_SECONDS = 30.0  # how long an exit nobody claimed is kept for a report still in flight
MAX_EARLY = 4096  # a host-PID container can orphan many processes; keep the table bounded
log = logging.getLogger("pycrid.children")


# fork(2) from libc, called with the GIL held (PyDLL), for pycrid's single-threaded helpers (the
# fork server, the pod monitors). Unlike os.fork() it runs none of the interpreter's at-fork hooks
# (threading, logging and random re-initialise their state in the child; logging takes and
# releases its lock around the fork): they are for a fork taken while other threads may hold
# locks, and these processes have one thread and fork between requests, so their state is
# consistent in the child as it is. Skipping them saves each pod monitor ~0.35 MiB: the hooks'
# code and allocations, spread over the heap it shares with the fork server, would turn as many
# copy-on-write pages into private copies. (Children share their parent's `random` state; none of
# them uses it.)
_libc_fork = ctypes.PyDLL(None, use_errno=True).fork

# signal.signal is Python code around the C function of _signal that turns the handler it returns
# into an enum (signal.Handlers): in a forked child, that enum machinery writes to pages it shares
# with its parent. set_handler calls the C function itself: ~0.1 MiB less for each pod monitor,
# which sets six handlers (forkserver.spawn, PodMonitor.serve). DEFAULT and IGNORE are its own
# SIG_DFL and SIG_IGN (it tells them apart from a handler by identity, not value).
_C_SIGNAL: Any = importlib.import_module("_signal")
DEFAULT: int = _C_SIGNAL.SIG_DFL
IGNORE: int = _C_SIGNAL.SIG_IGN


def set_handler(signum: int, handler: int | Callable[[int, Any], None]) -> None:
    """signal.signal(signum, handler), without converting the old handler to an enum."""
    _C_SIGNAL.signal(signum, handler)


def bare_fork() -> int:
    pid: int = _libc_fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid


def set_comm(name: bytes) -> None:
    """Helpers share the interpreter's command line; the name tells ps and tests apart. (os.write,
    not open(): no io objects in a helper that shares its pages with the fork server.)"""
    fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, name[:15])
    finally:
        os.close(fd)


def close_except(keep: Iterable[int]) -> None:
    """Closes every descriptor above stdio except ``keep``."""
    low = 3
    for fd in sorted({fd for fd in keep if fd >= 3}):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def has_children() -> bool:
    """Whether any child, running or exited but not reaped, is left."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


class Children:
    def __init__(self) -> None:
        self._helpers: set[int] = set()
        self._early: dict[int, tuple[int, float]] = {}  # pid → (wait status, when reaped)

    def fork(self, name: bytes, run: Callable[[], int], keep: Iterable[int], reported: bool = False) -> int:
        """Runs ``run()`` in a child named ``name`` (its comm) that holds only stdio and ``keep``;
        its exit is reported (by reap) only if ``reported``."""
        keep = tuple(keep)
        pid = bare_fork()
        if pid == 0:
            code = 1
            try:
                set_comm(name)
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                    set_handler(sig, DEFAULT)
                close_except(keep)
                code = run()
            except BaseException:  # noqa: BLE001 - a child must never return into the parent's loop
                log.exception("helper child failed")
            finally:
                os._exit(code)
        if not reported:
            self._helpers.add(pid)
        return pid

    def forget(self, pid: int) -> None:
        """``pid``'s exit, reaped already or still to come, is not reported."""
        if self._early.pop(pid, None) is None:
            self._helpers.add(pid)

    def reap(self) -> list[tuple[int, int]]:
        """Every child that exited, but the helpers: (pid, wait status)."""
        exited = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self._helpers:
                self._helpers.discard(pid)
            else:
                exited.append((pid, status))
        return exited

    def remember(self, pid: int, status: int) -> None:
        now = time.monotonic()
        for old in [p for p, (_, when) in self._early.items() if now - when > EARLY_SECONDS]:
            del self._early[old]
        if len(self._early) >= MAX_EARLY:
            del self._early[next(iter(self._early))]
        self._early[pid] = (status, now)

    def exited_early(self, pid: int) -> int | None:
        """The wait status of ``pid`` if it was reaped before anyone claimed it."""
        entry = self._early.pop(pid, None)
        return None if entry is None else entry[0]

    def end(self, pid: int) -> None:
        """Kills a child that leads a process group (a container init from its first step; before
        that, itself alone) with that group, and forgets its exit: nothing ran to record. One
        reaped already is left alone: its pid may be another process's now."""
        if self._early.pop(pid, None) is not None:
            return
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        self.kill_group(pid)
        self.kill(pid)
        self._helpers.add(pid)

    @staticmethod
    def kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def state(self) -> dict[str, Any]:
        return {"helpers": sorted(self._helpers), "early": {str(p): s for p, (s, _) in self._early.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._helpers = {int(p) for p in state.get("helpers", ())}
        now = time.monotonic()
        self._early = {int(p): (int(s), now) for p, s in state.get("early", {}).items()}
