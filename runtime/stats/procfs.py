"""Processes, threads, open files and sockets of a set of pids, from /proc (cAdvisor's
container_processes, container_threads, container_file_descriptors, container_sockets).

The pids come from the cgroup; any of them may exit while we read, which just drops it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from runtime.stats.sample import Processes

PROC = "/proc"
_GONE = (FileNotFoundError, ProcessLookupError)
_NUM_THREADS = 17  # field 20 of /proc/<pid>/stat, counted from the field after comm


def thread_count(stat_text: str) -> int:
    """num_threads of /proc/<pid>/stat; comm may hold spaces and parentheses."""
    return int(stat_text.rpartition(")")[2].split()[_NUM_THREADS])


def _read_stat(base: str) -> str | None:
    """/proc/<pid>/stat, or None when the process is gone."""
    try:
        fd = os.open(f"{base}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except _GONE:
        return None
    try:  # os.read, not open(): a scrape reads this for every process of every container
        return os.read(fd, 4096).decode()
    except _GONE:
        return None
    finally:
        os.close(fd)


def _open_files(base: str) -> tuple[int, int]:
    """(fds, sockets) of the process at ``base``; (0, 0) when it is gone."""
    try:
        # Each link is read relative to the open fd directory: the kernel then resolves only its
        # name, not /proc/<pid>/fd again (a scrape reads every descriptor of every process).
        fd_dir = os.open(f"{base}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except _GONE:
        return 0, 0
    try:
        try:
            names = os.listdir(fd_dir)
        except _GONE:
            return 0, 0
        fds = sockets = 0
        for name in names:
            try:
                target = os.readlink(name, dir_fd=fd_dir)
            except OSError:  # closed meanwhile
                continue
            fds += 1
            sockets += target.startswith("socket:")
        return fds, sockets
    finally:
        os.close(fd_dir)


def process_counts(pids: Iterable[int], proc_root: str = PROC) -> Processes:
    count = threads = fds = sockets = 0
    for pid in pids:
        base = f"{proc_root}/{pid}"
        stat = _read_stat(base)
        if stat is None:
            continue
        count += 1
        threads += thread_count(stat)
        files, socks = _open_files(base)
        fds += files
        sockets += socks
    return Processes(count=count, threads=threads, fds=fds, sockets=sockets)


def counts_if_alone(pid: int, tasks: int, proc_root: str = PROC) -> Processes | None:
    """process_counts([pid]) when ``pid``'s threads are all the ``tasks`` its cgroup holds (the
    pids controller's count of the subtree): then nobody else is in it and the cgroup's pid list
    need not be read. None when someone else may be there, or ``pid`` is gone."""
    base = f"{proc_root}/{pid}"
    stat = _read_stat(base)
    if stat is None:
        return None
    threads = thread_count(stat)
    if threads != tasks:
        return None
    fds, sockets = _open_files(base)
    return Processes(count=1, threads=threads, fds=fds, sockets=sockets)
