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


def process_counts(pids: Iterable[int], proc_root: str = PROC) -> Processes:
    count = threads = fds = sockets = 0
    for pid in pids:
        base = f"{proc_root}/{pid}"
        try:
            fd = os.open(f"{base}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except _GONE:
            continue
        try:  # os.read, not open(): a scrape reads this for every process of every container
            stat = os.read(fd, 4096).decode()
        except _GONE:
            continue
        finally:
            os.close(fd)
        count += 1
        threads += thread_count(stat)
        fd_dir = f"{base}/fd"
        try:
            names = os.listdir(fd_dir)
        except _GONE:
            continue
        for name in names:
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except OSError:  # closed meanwhile
                continue
            fds += 1
            sockets += target.startswith("socket:")
    return Processes(count=count, threads=threads, fds=fds, sockets=sockets)
