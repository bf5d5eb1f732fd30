"""Forking into a PID namespace from a process that goes on forking into its own: a pod's PID 1
(fork_pid1) and a container's init (fork_in), both by the pod monitor itself.

unshare(CLONE_NEWPID) and setns(fd, CLONE_NEWPID) move none of the caller: they change only where
the caller's next children go (its pid_for_children), and the first child forked after an unshare
is PID 1 of the new namespace, which exists from then on (/proc/self/ns/pid_for_children cannot
be opened before). Right after that fork the caller points pid_for_children back at its own
namespace (setns to /proc/self/ns/pid), whatever failed: every later child (another container's
init, an exec) must be forked where the caller lives, and forking into the new namespace would
even fail once its PID 1 is gone. unshare(CLONE_NEWPID) itself works only while pid_for_children
is the caller's own namespace, which that restore keeps true.

This spares a process per pod namespace and per container: without it, a child would enter the
namespace and fork for the caller, at the cost of a fork and its copy-on-write faults.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls

NEW, HOST = "new", "host"  # a new PID namespace; ours (the host's, for the pod monitor)


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
