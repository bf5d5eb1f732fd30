"""Forking PID 1 of a new PID namespace from a process that goes on forking into its own.

unshare(CLONE_NEWPID) moves none of the caller: it changes only where the caller's next children
go (its pid_for_children), and the first child it forks is PID 1 of the new namespace, which exists
from then on (/proc/self/ns/pid_for_children cannot be opened before). Right after that fork the
caller points pid_for_children back at its own namespace (setns to /proc/self/ns/pid), whatever
failed: every later child (a starter, an exec) must be forked where the caller lives, and forking
into the new namespace would even fail once its PID 1 is gone. unshare(CLONE_NEWPID) itself works
only while pid_for_children is the caller's own namespace, which that restore keeps true.

This spares a process per pod namespace: without it, a child would unshare and fork PID 1 for the
caller, at the cost of a fork and its copy-on-write faults.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls


def fork_pid1(fork: Callable[[], int], syscalls: Syscalls, abandon: Callable[[int], None]) -> tuple[int, int]:
    """Calls ``fork`` (forks one child and returns its pid) so that its child is PID 1 of a new
    PID namespace: (that pid, a close-on-exec descriptor of the namespace). If the namespace
    cannot be opened, the child is given to ``abandon`` (to kill it) and the error raised."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(k.CLONE_NEWPID)
        try:
            pid = fork()
            try:
                return pid, os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
            except BaseException:
                abandon(pid)
                raise
        finally:
            syscalls.setns(own, k.CLONE_NEWPID)
    finally:
        os.close(own)
