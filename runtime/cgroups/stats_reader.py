"""Read CgroupStats from a cgroup at call time: each file read once, parsing in stats.py.

Scrapes and stats RPCs call this for every container, so it reads only the files it reports,
all of a cgroup's in one read_many call (HeldFiles answers it under one lock), and never walks
the tree. The root cgroup ("/") is allowed: node-level stats read it too.
"""

import functools
import os

from runtime.cgroups import stats as s
from runtime.cgroups.cgroupfs import EACH_TIME, StatFiles, cgroup_dir

_NS_PER_US = 1000
_NS_PER_S = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The memory.stat keys read below.
_V1_MEMORY_KEYS = frozenset({"total_inactive_file", "total_rss", "total_cache", "total_mapped_file",
                             "total_swap", "total_pgfault", "total_pgmajfault", "pgfault", "pgmajfault"})
_V2_MEMORY_KEYS = frozenset({"inactive_file", "anon", "file", "file_mapped", "pgfault", "pgmajfault"})
# (hierarchy, file), in the order read_v1_stats unpacks them. The _recursive blkio files include
# descendants; older kernels have only the plain ones (read then instead).
_V1_FILES = (("cpuacct", "cpuacct.stat"), ("cpu", "cpu.stat"), ("cpuacct", "cpuacct.usage"),
             ("memory", "memory.stat"), ("memory", "memory.usage_in_bytes"),
             ("memory", "memory.max_usage_in_bytes"), ("memory", "memory.failcnt"),
             ("memory", "memory.limit_in_bytes"), ("memory", "memory.oom_control"),
             ("pids", "pids.current"), ("pids", "pids.max"),
             ("blkio", "blkio.throttle.io_service_bytes_recursive"),
             ("blkio", "blkio.throttle.io_serviced_recursive"))
_V1_PLAIN_BLKIO = (("blkio", "blkio.throttle.io_service_bytes"), ("blkio", "blkio.throttle.io_serviced"))
_V2_FILES = ("cpu.stat", "memory.stat", "memory.events", "memory.current", "memory.swap.current",
             "memory.peak", "memory.max", "pids.current", "pids.max", "io.stat", "cpu.pressure",
             "memory.pressure", "io.pressure")


@functools.lru_cache(maxsize=4096)  # the same cgroups are read on every scrape
def _v1_paths(root: str, path: str, files: tuple[tuple[str, str], ...] = _V1_FILES) -> tuple[str, ...]:
    relative = cgroup_dir("", path, allow_root=True)  # checks the path
    return tuple(f"{root}/{hierarchy}/{relative}/{name}" for hierarchy, name in files)


@functools.lru_cache(maxsize=4096)
def _v2_paths(root: str, path: str) -> tuple[str, ...]:
    directory = cgroup_dir(root, path, allow_root=True)
    return tuple(os.path.join(directory, name) for name in _V2_FILES)


def read_v1_stats(root: str, path: str, clk_tck: int = CLK_TCK,
                  files: StatFiles = EACH_TIME) -> s.CgroupStats:
    """Stats of ``path`` across the v1 hierarchies mounted under ``root``."""
    (acct_stat, cpu_stat, acct_usage, memory_stat, usage_text, max_usage, failcnt, limit, oom_control,
     pids_current, pids_max, io_bytes, io_ops) = files.read_many(_v1_paths(root, path))
    if io_bytes is None and io_ops is None:
        io_bytes, io_ops = files.read_many(_v1_paths(root, path, _V1_PLAIN_BLKIO))

    # cpuacct.stat counts USER_HZ ticks; cpuacct.usage and throttled_time are nanoseconds.
    ticks = s.parse_flat_keyed(acct_stat)
    throttle = s.parse_flat_keyed(cpu_stat)
    tick_ns = _NS_PER_S // clk_tck
    cpu = s.CpuStats(
        usage_ns=s.parse_int(acct_usage),
        user_ns=_scaled(ticks.get("user"), tick_ns),
        system_ns=_scaled(ticks.get("system"), tick_ns),
        nr_periods=throttle.get("nr_periods"),
        nr_throttled=throttle.get("nr_throttled"),
        throttled_ns=throttle.get("throttled_time"),
    )

    # total_* counters include descendants, so a pod cgroup reports its containers.
    mstat = s.parse_flat_keyed(memory_stat, _V1_MEMORY_KEYS)
    usage = s.parse_int(usage_text)
    memory = s.MemoryStats(
        usage_bytes=usage,
        working_set_bytes=s.working_set(usage, mstat.get("total_inactive_file")),
        rss_bytes=mstat.get("total_rss"),
        cache_bytes=mstat.get("total_cache"),
        mapped_file_bytes=mstat.get("total_mapped_file"),
        swap_bytes=mstat.get("total_swap"),
        max_usage_bytes=s.parse_int(max_usage),
        failcnt=s.parse_int(failcnt),
        pgfault=mstat.get("total_pgfault"),
        pgmajfault=mstat.get("total_pgmajfault"),
        local_pgfault=mstat.get("pgfault"),
        local_pgmajfault=mstat.get("pgmajfault"),
        limit_bytes=s.parse_limit(limit),
        oom_kills=s.parse_flat_keyed(oom_control).get("oom_kill"),
    )
    return s.CgroupStats(cpu=cpu, memory=memory, pids=_pids(pids_current, pids_max),
                         io=s.parse_blkio(io_bytes, io_ops))


def read_v2_stats(root: str, path: str, files: StatFiles = EACH_TIME) -> s.CgroupStats:
    """Stats of ``path`` in the cgroup v2 hierarchy mounted at ``root``."""
    (cpu_stat, memory_stat, memory_events, current, swap_current, peak, memory_max, pids_current,
     pids_max, io_stat, cpu_pressure, memory_pressure, io_pressure) = files.read_many(_v2_paths(root, path))

    cstat = s.parse_flat_keyed(cpu_stat)
    cpu = s.CpuStats(
        usage_ns=_scaled(cstat.get("usage_usec"), _NS_PER_US),
        user_ns=_scaled(cstat.get("user_usec"), _NS_PER_US),
        system_ns=_scaled(cstat.get("system_usec"), _NS_PER_US),
        nr_periods=cstat.get("nr_periods"),
        nr_throttled=cstat.get("nr_throttled"),
        throttled_ns=_scaled(cstat.get("throttled_usec"), _NS_PER_US),
    )

    mstat = s.parse_flat_keyed(memory_stat, _V2_MEMORY_KEYS)
    events = s.parse_flat_keyed(memory_events)
    usage = s.parse_int(current)
    memory = s.MemoryStats(
        usage_bytes=usage,
        working_set_bytes=s.working_set(usage, mstat.get("inactive_file")),
        rss_bytes=mstat.get("anon"),
        cache_bytes=mstat.get("file"),
        mapped_file_bytes=mstat.get("file_mapped"),
        swap_bytes=s.parse_int(swap_current),
        max_usage_bytes=s.parse_int(peak),
        # v2 has no failcnt; the count of hits on memory.max is the same event (as cAdvisor).
        failcnt=events.get("max"),
        pgfault=mstat.get("pgfault"),
        pgmajfault=mstat.get("pgmajfault"),
        local_pgfault=mstat.get("pgfault"),
        local_pgmajfault=mstat.get("pgmajfault"),
        limit_bytes=s.parse_limit(memory_max),
        oom_kills=events.get("oom_kill"),
    )

    return s.CgroupStats(
        cpu=cpu,
        memory=memory,
        pids=_pids(pids_current, pids_max),
        io=s.parse_io_stat(io_stat),
        cpu_pressure=s.parse_pressure(cpu_pressure),
        memory_pressure=s.parse_pressure(memory_pressure),
        io_pressure=s.parse_pressure(io_pressure),
    )


def _pids(current: str | None, limit: str | None) -> s.PidsStats:
    return s.PidsStats(current=s.parse_int(current), limit=s.parse_limit(limit))


def _scaled(value: int | None, factor: int) -> int | None:
    return None if value is None else value * factor
