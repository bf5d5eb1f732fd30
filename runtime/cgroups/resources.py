"""Container resource limits and the pure mapping from them to cgroup file writes.

``Resources`` mirrors CRI LinuxContainerResources (plus the pod's pids limit). As in the CRI,
0 / "" means "not set": the file is left alone. -1 means "unlimited" where the kernel has one.
Validation happens at construction, so a Resources value is always writable.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runtime.errors import InvalidArgument

UNLIMITED = -1
# The kernel clamps cpu.shares to [2, 262144]; the v2 weight conversion relies on that range.
MIN_SHARES, MAX_SHARES = 2, 262144
# cpu.cfs_period_us must lie in [1 ms, 1 s]; a quota must be at least 1 ms.
MIN_CFS_US, MAX_CFS_PERIOD_US = 1000, 1_000_000

_CPU_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_PAGE_SIZE = re.compile(r"^\d+[KMGT]B$")
_UNIFIED_KEY = re.compile(r"^[a-z0-9_]+\.[a-z0-9_.]+$")
# Unified keys that change membership or lifecycle rather than limits; never via passthrough.
_UNIFIED_FORBIDDEN = frozenset(
    {"cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control"}
)


@dataclass(frozen=True)
class Resources:
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0
    # Applied to the process by container init (/proc/<pid>/oom_score_adj), not to the cgroup.
    oom_score_adj: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    # Page size ("2MB", "1GB") -> byte limit. Unlike the other fields, 0 is a real limit here:
    # the kubelet sends 0 for every page size the pod did not request, meaning "none allowed".
    # hash=False: mappings are unhashable; equal values still hash equal on the other fields.
    hugepage_limits: Mapping[str, int] = field(default_factory=dict, hash=False)
    unified: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Memory + swap, as in cgroup v1 memory.memsw.limit_in_bytes.
    memory_swap_limit_in_bytes: int = 0
    pids_limit: int = 0

    def __post_init__(self) -> None:
        # Private copies: a caller mutating its dict must not change a frozen value.
        object.__setattr__(self, "hugepage_limits", MappingProxyType(dict(self.hugepage_limits)))
        object.__setattr__(self, "unified", MappingProxyType(dict(self.unified)))
        _validate(self)


def _validate(r: Resources) -> None:
    if r.cpu_shares < 0:
        raise InvalidArgument(f"cpu_shares {r.cpu_shares}: must not be negative")
    if r.cpu_period != 0 and not MIN_CFS_US <= r.cpu_period <= MAX_CFS_PERIOD_US:
        raise InvalidArgument(
            f"cpu_period {r.cpu_period}: must be between {MIN_CFS_US} and {MAX_CFS_PERIOD_US} µs"
        )
    if r.cpu_quota not in (0, UNLIMITED) and r.cpu_quota < MIN_CFS_US:
        raise InvalidArgument(
            f"cpu_quota {r.cpu_quota}: must be -1, 0 or at least {MIN_CFS_US} µs"
        )
    for name in ("memory_limit_in_bytes", "memory_swap_limit_in_bytes", "pids_limit"):
        if getattr(r, name) < UNLIMITED:
            raise InvalidArgument(f"{name} {getattr(r, name)}: must be -1, 0 or positive")
    mem, swap = r.memory_limit_in_bytes, r.memory_swap_limit_in_bytes
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidArgument(
            f"memory_swap_limit_in_bytes {swap}: less than the memory limit {mem}"
        )
    if not -1000 <= r.oom_score_adj <= 1000:
        raise InvalidArgument(f"oom_score_adj {r.oom_score_adj}: must be between -1000 and 1000")
    for name in ("cpuset_cpus", "cpuset_mems"):
        value = getattr(r, name)
        if value and not _CPU_LIST.match(value):
            raise InvalidArgument(f"{name} {value!r}: not a list like 0-3,5")
    for size, limit in r.hugepage_limits.items():
        if not _PAGE_SIZE.match(size):
            raise InvalidArgument(f"hugepage page size {size!r}: not like 2MB or 1GB")
        if limit < 0:
            raise InvalidArgument(f"hugepage limit for {size}: {limit} is negative")
    for key, value in r.unified.items():
        # Keys become file names inside the cgroup directory: no path tricks.
        if "/" in key or ".." in key or not _UNIFIED_KEY.match(key) or key in _UNIFIED_FORBIDDEN:
            raise InvalidArgument(f"unified key {key!r}: not a cgroup resource file name")
        if "\0" in value or "\n" in value.rstrip("\n"):
            raise InvalidArgument(f"unified {key}: value {value!r} must be a single line")


@dataclass(frozen=True)
class FileWrite:
    """One value written to one file of the cgroup directory, in order."""

    name: str
    value: str


def controller_of(file_name: str) -> str:
    """The controller (and v1 hierarchy) a control file belongs to: "memory.max" -> "memory"."""
    return file_name.split(".", 1)[0]


def _effective_swap(r: Resources) -> int:
    # Unlimited memory with swap unset means both unlimited; otherwise the kernel would refuse
    # memory > an existing memsw limit (v1), and v2 would keep an old swap cap.
    if r.memory_limit_in_bytes == UNLIMITED and r.memory_swap_limit_in_bytes == 0:
        return UNLIMITED
    return r.memory_swap_limit_in_bytes


def memsw_first(new_memsw: int, current_memory_limit: int | None) -> bool:
    """Whether v1 must write memory.memsw.limit_in_bytes before memory.limit_in_bytes.

    The kernel keeps memory.limit <= memsw.limit at every step. Writing memsw first works when the
    new memsw is at least the current memory limit (None: unlimited); otherwise the new memory
    limit is below the new memsw, hence below the current one, so writing memory first works.
    """
    if new_memsw == UNLIMITED:
        return True
    return current_memory_limit is not None and new_memsw >= current_memory_limit


def v1_writes(
    r: Resources, *, current_memory_limit: int | None, swap_accounting: bool
) -> list[FileWrite]:
    """Files to write for cgroup v1. ``current_memory_limit`` (None: unlimited) orders the
    memory/memsw pair."""
    if r.unified:
        raise InvalidArgument("unified resources need cgroup v2; this node runs cgroup v1")
    writes = _cpu_v1(r) + _cpuset(r)
    memory = (
        [FileWrite("memory.limit_in_bytes", str(r.memory_limit_in_bytes))]
        if r.memory_limit_in_bytes
        else []
    )
    swap = _effective_swap(r)
    # Without swap accounting (no memsw files) there is nothing to limit: memory alone applies.
    if swap and swap_accounting:
        memsw = FileWrite("memory.memsw.limit_in_bytes", str(swap))
        memory = [memsw, *memory] if memsw_first(swap, current_memory_limit) else [*memory, memsw]
    writes += memory
    writes += _pids(r)
    writes += [
        FileWrite(f"hugetlb.{size}.limit_in_bytes", str(limit))
        for size, limit in sorted(r.hugepage_limits.items())
    ]
    return writes


def _cpu_v1(r: Resources) -> list[FileWrite]:
    writes = []
    if r.cpu_shares:
        writes.append(FileWrite("cpu.shares", str(r.cpu_shares)))
    # Period before quota: the kernel checks the quota against the period in force.
    if r.cpu_period:
        writes.append(FileWrite("cpu.cfs_period_us", str(r.cpu_period)))
    if r.cpu_quota:
        writes.append(FileWrite("cpu.cfs_quota_us", str(r.cpu_quota)))
    return writes


def _cpuset(r: Resources) -> list[FileWrite]:
    writes = []
    if r.cpuset_cpus:
        writes.append(FileWrite("cpuset.cpus", r.cpuset_cpus))
    if r.cpuset_mems:
        writes.append(FileWrite("cpuset.mems", r.cpuset_mems))
    return writes


def _pids(r: Resources) -> list[FileWrite]:
    if not r.pids_limit:
        return []
    return [FileWrite("pids.max", "max" if r.pids_limit == UNLIMITED else str(r.pids_limit))]


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000] on a log scale that keeps the defaults
    (1024 shares, one CPU, is weight 100): the kubelet's own conversion for the pod cgroups it
    makes (libcontainer's ConvertCPUSharesToCgroupV2Value) and runc >= 1.3.2's and crun's for
    containers, so a container weighs what its pod does. The old linear one gave 1024 -> 39."""
    if shares <= MIN_SHARES:
        return 1
    if shares >= MAX_SHARES:
        return 10000
    exponent = (math.log2(shares) ** 2 + 125 * math.log2(shares)) / 612 - 7 / 34
    return math.ceil(10**exponent)


def v2_swap_max(r: Resources) -> str | None:
    """memory.swap.max from CRI memsw (memory + swap); None when swap is not set."""
    swap, mem = _effective_swap(r), r.memory_limit_in_bytes
    if swap == 0:
        return None
    if swap == UNLIMITED:
        return "max"
    if mem in (0, UNLIMITED):
        raise InvalidArgument(
            f"memory_swap_limit_in_bytes {swap}: needs a memory limit on cgroup v2"
        )
    return str(swap - mem)


def v2_writes(r: Resources) -> list[FileWrite]:
    """Files to write for cgroup v2, ``unified`` last so it overrides the mapped values."""
    writes = []
    if r.cpu_shares:
        writes.append(FileWrite("cpu.weight", str(shares_to_weight(r.cpu_shares))))
    if r.cpu_quota or r.cpu_period:
        quota = str(r.cpu_quota) if r.cpu_quota > 0 else "max"
        # A lone quota keeps the period in force, like v1 leaving cpu.cfs_period_us alone.
        writes.append(FileWrite("cpu.max", f"{quota} {r.cpu_period}" if r.cpu_period else quota))
    writes += _cpuset(r)
    if r.memory_limit_in_bytes:
        mem = r.memory_limit_in_bytes
        writes.append(FileWrite("memory.max", "max" if mem == UNLIMITED else str(mem)))
    swap = v2_swap_max(r)
    if swap is not None:
        writes.append(FileWrite("memory.swap.max", swap))
    writes += _pids(r)
    writes += [
        FileWrite(f"hugetlb.{size}.max", str(limit))
        for size, limit in sorted(r.hugepage_limits.items())
    ]
    writes += [FileWrite(key, value) for key, value in sorted(r.unified.items())]
    return writes
