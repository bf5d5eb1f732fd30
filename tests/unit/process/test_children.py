"""bare_fork: a fork without the interpreter's at-fork hooks (runtime/process/children.py)."""
from __future__ import annotations

import os
from collections.abc import Callable

from runtime.process.children import bare_fork

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
