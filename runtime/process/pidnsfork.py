"""A fork whose child is in a given PID namespace, by a long-lived process that stays in its own.

unshare(CLONE_NEWPID) and setns(fd, CLONE_NEWPID) move only the caller's pid_for_children: its
next child is PID 1 of a new namespace, or a member of the joined one. The pod monitor forks a
container's init that way, and then must point pid_for_children back at its own namespace, or its
next children (other containers' inits, execs) would land in this one's. It does so in a
``finally``, so that no failure leaves it pointing elsewhere.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls

NEW, HOST = "new", "host"  # a new PID namespace; ours (the host's, for the pod monitor)


def fork_in(where: str | int, fork: Callable[[], int], syscalls: Syscalls) -> int:
    """``fork()`` (0 in the child, its pid in the parent) with the child in PID namespace
    ``where``: NEW, HOST or a descriptor of the namespace to join."""
    if where == HOST:
        return fork()
    if where != NEW and not isinstance(where, int):
        raise Internal(f"unknown PID namespace {where!r}")
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # first: nothing to undo if it fails
    pid = -1
    try:
        if where == NEW:
            syscalls.unshare(k.CLONE_NEWPID)
        else:
            syscalls.setns(int(where), k.CLONE_NEWPID)
        pid = fork()
        return pid
    finally:
        try:
            if pid != 0:  # the parent, whether the fork happened or not; the child is where it belongs
                syscalls.setns(own, k.CLONE_NEWPID)
        finally:
            os.close(own)
