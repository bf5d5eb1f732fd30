"""Network interfaces of a pod, from /proc/net/dev as seen inside its network namespace.

The cheap way: /proc/<pid>/net/dev of a process that is in the pod's namespace (a container's init
or the pause process), checked by comparing its /proc/<pid>/ns/net with the pinned namespace file
before and after the read, so a pid reused meanwhile is never trusted. When no such process runs
(a pod without running containers), a short-lived thread enters the namespace
(runtime/network/in_netns.py) and reads /proc/thread-self/net/dev: /proc/net is the main
thread's view, not the entering thread's. The agent never forks for this.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from runtime.errors import Internal, NotFound
from runtime.linux.seqfile import read_whole
from runtime.network.in_netns import run_in_netns
from runtime.stats.sample import Interface

T = TypeVar("T")


class InNetns(Protocol):
    """Runs ``fn`` in the network namespace pinned at ``netns_path``; its result (run_in_netns)."""

    def __call__(self, netns_path: str, fn: Callable[[], T], /) -> T: ...


# cAdvisor leaves out loopback: it is the same in every pod and says nothing about traffic.
_IGNORED = frozenset({"lo"})


def parse_net_dev(text: str) -> tuple[Interface, ...]:
    """/proc/net/dev: two header lines, then "name: 8 receive and 8 transmit counters"."""
    interfaces = []
    for line in text.splitlines()[2:]:
        name, sep, counters = line.partition(":")
        name = name.strip()
        if not sep or name in _IGNORED:
            continue
        v = [int(x) for x in counters.split()]
        if len(v) < 16:
            continue
        interfaces.append(Interface(name, rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_dropped=v[3],
                                    tx_bytes=v[8], tx_packets=v[9], tx_errors=v[10], tx_dropped=v[11]))
    return tuple(sorted(interfaces, key=lambda i: i.name))


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # not open(): read for every pod on every scrape
    try:
        return read_whole(fd).decode()
    finally:
        os.close(fd)


def _same_ns(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class PodNetwork:
    def __init__(self, proc_root: str = "/proc", in_netns: InNetns | None = None) -> None:
        self._proc = proc_root
        self._in_netns = in_netns or run_in_netns

    def interfaces(self, netns_path: str, pids: Iterable[int]) -> tuple[Interface, ...] | None:
        """The pod's interfaces, or None when its namespace is gone (a stopped pod)."""
        try:
            want = os.stat(netns_path)
        except FileNotFoundError:
            return None
        for pid in pids:
            if pid <= 0:
                continue
            ns = f"{self._proc}/{pid}/ns/net"
            try:
                if not _same_ns(os.stat(ns), want):
                    continue
                text = _read(f"{self._proc}/{pid}/net/dev")
                if _same_ns(os.stat(ns), want):
                    return parse_net_dev(text)
            except (FileNotFoundError, ProcessLookupError):
                continue
        try:
            return parse_net_dev(self._in_netns(netns_path, lambda: _read("/proc/thread-self/net/dev")))
        except NotFound:
            return None
        except Internal:
            if _is_namespace(netns_path):
                raise
            return None  # unpinned while we read: the pod is stopping


def _is_namespace(path: str) -> bool:
    """Whether ``path`` is still a namespace (nsfs) and not the plain file a pin leaves behind."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except FileNotFoundError:
        return False
