"""A new process moving itself into its cgroup (cgroup v1).

Writing a pid to cgroup.procs makes the kernel take its global threadgroup lock for writing, and
taking that lock after a quiet spell waits out an RCU grace period: 10-20 ms on these machines,
until now the largest part of StartContainer. A thread that writes "0" to a hierarchy's ``tasks``
file moves itself, and that needs no such lock (its own thread group cannot change under it): it
takes ~0.1 ms per hierarchy. The processes that do it (container init, an exec'd command) are
single-threaded forks, so moving their one thread moves the process, and every thread they make
later starts where they are.

The parent opens the files, since it still sees the host's cgroupfs; the child writes, first
thing, before it enters any namespace. cgroup v2 has no such file (cgroup.threads needs threaded
mode): there ``open_tasks_files`` gives nothing and the parent moves the child with add_process.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from runtime.cgroups.manager import CgroupManager


def open_tasks_files(cgroups: CgroupManager, path: str) -> list[int]:
    """Descriptors of the cgroup's ``tasks`` files (close-on-exec; a fork inherits them), or []
    when the child cannot join by itself (v2)."""
    fds: list[int] = []
    try:
        for name in cgroups.tasks_files(path):
            fds.append(os.open(name, os.O_WRONLY | os.O_CLOEXEC))
    except BaseException:
        close_all(fds)
        raise
    return fds


def join_self(fds: Iterable[int]) -> None:
    """In the child: move this (single-threaded) process into the cgroup, and close the files."""
    try:
        for fd in fds:
            os.write(fd, b"0")
    finally:
        close_all(fds)


def close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)
