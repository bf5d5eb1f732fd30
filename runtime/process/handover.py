"""Re-exec in place: a helper replaces its code with a newer build and keeps its pid, its children
and the descriptors it names.

The state goes to the new program in a memfd inherited across execve (its number is passed in
argv as ``--resume FD``); the descriptors the state refers to lose close-on-exec, every other one
keeps it and closes. The state is a versioned JSON document: a newer build reads what an older one
wrote (STATE_VERSION only grows; readers accept every version up to theirs).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

from runtime.errors import InvalidArgument

STATE_VERSION = 1
MAX_STATE = 16 << 20
log = logging.getLogger("pycrid.handover")


def check_target(argv: object, env: object) -> tuple[list[str], dict[str, str]]:
    """The upgrade request's program, checked: an absolute interpreter path and string values."""
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)
            and os.path.isabs(argv[0])):
        raise InvalidArgument(f"upgrade: argv must be a list of strings starting with an absolute path: {argv!r}")
    if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
        raise InvalidArgument("upgrade: env must map strings to strings")
    return argv, env


def exec_with_state(argv: list[str], env: dict[str, str], state: dict[str, Any], keep: Iterable[int]) -> NoReturn:
    """Writes ``state`` to a memfd and execs ``argv + ["--resume", fd]``; ``keep`` stay open."""
    fd = os.memfd_create("pycrid-handover", 0)  # not close-on-exec: the new program reads it
    os.write(fd, json.dumps({"version": STATE_VERSION, **state}).encode())
    for kept in keep:
        os.set_inheritable(kept, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], [*argv, "--resume", str(fd)], env)


def read_state(fd: int) -> dict[str, Any]:
    """The state a previous build handed over (and closes its memfd)."""
    try:
        size = os.fstat(fd).st_size
        if size > MAX_STATE:
            raise InvalidArgument(f"handover state of {size} bytes is larger than {MAX_STATE}")
        state = json.loads(os.pread(fd, size, 0))
    finally:
        os.close(fd)
    if not isinstance(state, dict) or not 1 <= int(state.get("version", 0)) <= STATE_VERSION:
        raise InvalidArgument(f"handover state of an unknown version: {str(state)[:80]!r}")
    return state


def restore_cloexec(fds: Iterable[int]) -> None:
    """The inherited descriptors go back to close-on-exec, so our children get none by accident."""
    for fd in fds:
        os.set_inheritable(fd, False)
