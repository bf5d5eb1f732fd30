"""pycrid's own process families (process_cpu_seconds_total, process_open_fds, ...), named and
described as prometheus_client's ProcessCollector has them, without its listing of /proc/self/fd:
pycrid keeps cgroup stat files open (HeldFiles, about a dozen per container), so that listing grew
with the node and cost a scrape ~50 us per container. Since Linux 6.2 the size of a process's fd
directory is its number of open descriptors; older kernels report 0 there and get the listing."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def open_fd_count(fd_dir: str, size: Callable[[str], int] = lambda p: os.stat(p).st_size,
                  listdir: Callable[[str], list[str]] = os.listdir) -> int:
    """Descriptors open in the process whose fd directory is ``fd_dir``."""
    return size(fd_dir) or len(listdir(fd_dir))


def boot_time(proc: str) -> float:
    with open(os.path.join(proc, "stat"), "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise ValueError(f"{proc}/stat: no btime line")


class SelfProcessCollector(Collector):
    def __init__(self, proc: str = "/proc", pid: str = "self",
                 fd_count: Callable[[str], int] = open_fd_count) -> None:
        self._dir = os.path.join(proc, pid)
        self._btime = boot_time(proc)
        self._fd_count = fd_count

    def collect(self) -> Iterator[Metric]:
        with open(os.path.join(self._dir, "stat"), "rb") as f:
            # Fields after the command name, which may itself hold spaces and parentheses.
            fields = f.read().rpartition(b")")[2].split()
        yield GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                value=float(fields[20]))
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                value=float(fields[21]) * _PAGE_SIZE)
        yield GaugeMetricFamily("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                value=float(fields[19]) / _TICKS + self._btime)
        yield CounterMetricFamily("process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.",
                                  value=float(fields[11]) / _TICKS + float(fields[12]) / _TICKS)
        yield GaugeMetricFamily("process_open_fds", "Number of open file descriptors.",
                                value=self._fd_count(os.path.join(self._dir, "fd")))
        with open(os.path.join(self._dir, "limits"), "rb") as f:
            for line in f:
                if line.startswith(b"Max open files"):
                    yield GaugeMetricFamily("process_max_fds", "Maximum number of open file descriptors.",
                                            value=float(line.split()[3]))
                    break
