"""Read CgroupStats from a cgroup at call time: one read per file, parsing in stats.py.

Scrapes and stats RPCs call this for every container, so it reads only the files it reports
and never walks the tree. The root cgroup ("/") is allowed: node-level stats read it too.
"""

import os
from collections.abc import Callable

from runtime.cgroups import stats as s
from runtime.cgroups.cgroupfs import cgroup_dir, read_optional

# A file's text, or None when it does not exist: cgroupfs.read_optional, or HeldFiles.read.
ReadFile = Callable[[str], str | None]
_NS_PER_US = 1000
_NS_PER_S = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The memory.stat keys read below.
_V1_MEMORY_KEYS = frozenset({"total_inactive_file", "total_rss", "total_cache", "total_mapped_file",
                             "total_swap", "total_pgfault", "total_pgmajfault", "pgfault", "pgmajfault"})
_V2_MEMORY_KEYS = frozenset({"inactive_file", "anon", "file", "file_mapped", "pgfault", "pgmajfault"})


def read_v1_stats(root: str, path: str, clk_tck: int = CLK_TCK,
                  read_file: ReadFile = read_optional) -> s.CgroupStats:
    """Stats of ``path`` across the v1 hierarchies mounted under ``root``."""

    # The path is checked once; each file is then a string join away (scrapes read ~13 per cgroup).
    relative = cgroup_dir("", path, allow_root=True)

    def read(hierarchy: str, name: str) -> str | None:
        return read_file(f"{root}/{hierarchy}/{relative}/{name}")

    # cpuacct.stat counts USER_HZ ticks; cpuacct.usage and throttled_time are nanoseconds.
    ticks = s.parse_flat_keyed(read("cpuacct", "cpuacct.stat"))
    throttle = s.parse_flat_keyed(read("cpu", "cpu.stat"))
    tick_ns = _NS_PER_S // clk_tck
    cpu = s.CpuStats(
        usage_ns=s.parse_int(read("cpuacct", "cpuacct.usage")),
        user_ns=_scaled(ticks.get("user"), tick_ns),
        system_ns=_scaled(ticks.get("system"), tick_ns),
        nr_periods=throttle.get("nr_periods"),
        nr_throttled=throttle.get("nr_throttled"),
        throttled_ns=throttle.get("throttled_time"),
    )

    # total_* counters include descendants, so a pod cgroup reports its containers.
    mstat = s.parse_flat_keyed(read("memory", "memory.stat"), _V1_MEMORY_KEYS)
    usage = s.parse_int(read("memory", "memory.usage_in_bytes"))
    memory = s.MemoryStats(
        usage_bytes=usage,
        working_set_bytes=s.working_set(usage, mstat.get("total_inactive_file")),
        rss_bytes=mstat.get("total_rss"),
        cache_bytes=mstat.get("total_cache"),
        mapped_file_bytes=mstat.get("total_mapped_file"),
        swap_bytes=mstat.get("total_swap"),
        max_usage_bytes=s.parse_int(read("memory", "memory.max_usage_in_bytes")),
        failcnt=s.parse_int(read("memory", "memory.failcnt")),
        pgfault=mstat.get("total_pgfault"),
        pgmajfault=mstat.get("total_pgmajfault"),
        local_pgfault=mstat.get("pgfault"),
        local_pgmajfault=mstat.get("pgmajfault"),
        limit_bytes=s.parse_limit(read("memory", "memory.limit_in_bytes")),
        oom_kills=s.parse_flat_keyed(read("memory", "memory.oom_control")).get("oom_kill"),
    )

    # The _recursive files include descendants; older kernels have only the plain ones.
    def blkio(name: str) -> str | None:
        text = read("blkio", f"{name}_recursive")
        return text if text is not None else read("blkio", name)

    return s.CgroupStats(
        cpu=cpu,
        memory=memory,
        pids=_pids(lambda name: read("pids", name)),
        io=s.parse_blkio(
            blkio("blkio.throttle.io_service_bytes"), blkio("blkio.throttle.io_serviced")
        ),
    )


def read_v2_stats(root: str, path: str, read_file: ReadFile = read_optional) -> s.CgroupStats:
    """Stats of ``path`` in the cgroup v2 hierarchy mounted at ``root``."""
    directory = cgroup_dir(root, path, allow_root=True)

    def read(name: str) -> str | None:
        return read_file(os.path.join(directory, name))

    cstat = s.parse_flat_keyed(read("cpu.stat"))
    cpu = s.CpuStats(
        usage_ns=_scaled(cstat.get("usage_usec"), _NS_PER_US),
        user_ns=_scaled(cstat.get("user_usec"), _NS_PER_US),
        system_ns=_scaled(cstat.get("system_usec"), _NS_PER_US),
        nr_periods=cstat.get("nr_periods"),
        nr_throttled=cstat.get("nr_throttled"),
        throttled_ns=_scaled(cstat.get("throttled_usec"), _NS_PER_US),
    )

    mstat = s.parse_flat_keyed(read("memory.stat"), _V2_MEMORY_KEYS)
    events = s.parse_flat_keyed(read("memory.events"))
    usage = s.parse_int(read("memory.current"))
    memory = s.MemoryStats(
        usage_bytes=usage,
        working_set_bytes=s.working_set(usage, mstat.get("inactive_file")),
        rss_bytes=mstat.get("anon"),
        cache_bytes=mstat.get("file"),
        mapped_file_bytes=mstat.get("file_mapped"),
        swap_bytes=s.parse_int(read("memory.swap.current")),
        max_usage_bytes=s.parse_int(read("memory.peak")),
        # v2 has no failcnt; the count of hits on memory.max is the same event (as cAdvisor).
        failcnt=events.get("max"),
        pgfault=mstat.get("pgfault"),
        pgmajfault=mstat.get("pgmajfault"),
        local_pgfault=mstat.get("pgfault"),
        local_pgmajfault=mstat.get("pgmajfault"),
        limit_bytes=s.parse_limit(read("memory.max")),
        oom_kills=events.get("oom_kill"),
    )

    return s.CgroupStats(
        cpu=cpu,
        memory=memory,
        pids=_pids(read),
        io=s.parse_io_stat(read("io.stat")),
        cpu_pressure=s.parse_pressure(read("cpu.pressure")),
        memory_pressure=s.parse_pressure(read("memory.pressure")),
        io_pressure=s.parse_pressure(read("io.pressure")),
    )


def _pids(read: Callable[[str], str | None]) -> s.PidsStats:
    return s.PidsStats(
        current=s.parse_int(read("pids.current")), limit=s.parse_limit(read("pids.max"))
    )


def _scaled(value: int | None, factor: int) -> int | None:
    return None if value is None else value * factor
