import pytest

from runtime.cgroups.resources import (
    FileWrite,
    Resources,
    controller_of,
    memsw_first,
    shares_to_weight,
    v1_writes,
    v2_writes,
)
from runtime.errors import InvalidArgument

MiB = 1 << 20


def w(*pairs: tuple[str, str]) -> list[FileWrite]:
    return [FileWrite(name, value) for name, value in pairs]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cpu_shares": -1},
        {"cpu_period": 999},
        {"cpu_period": 1_000_001},
        {"cpu_quota": 999},
        {"cpu_quota": -2},
        {"memory_limit_in_bytes": -2},
        {"memory_swap_limit_in_bytes": -5},
        {"pids_limit": -2},
        {"memory_limit_in_bytes": 64 * MiB, "memory_swap_limit_in_bytes": 32 * MiB},
        {"oom_score_adj": 1001},
        {"oom_score_adj": -1001},
        {"cpuset_cpus": "0-"},
        {"cpuset_cpus": "0,a"},
        {"cpuset_mems": "0;1"},
        {"hugepage_limits": {"2M": 0}},
        {"hugepage_limits": {"../2MB": 0}},
        {"hugepage_limits": {"2MB": -1}},
        {"unified": {"../memory.max": "1"}},
        {"unified": {"memory/max": "1"}},
        {"unified": {"memory..max": "1"}},
        {"unified": {"memory": "1"}},
        {"unified": {"cgroup.procs": "1"}},
        {"unified": {"cgroup.kill": "1"}},
        {"unified": {"memory.high": "1\n2"}},
        {"unified": {"memory.high": "1\0"}},
    ],
)
def test_invalid_resources_are_rejected_at_construction(kwargs):
    with pytest.raises(InvalidArgument):
        Resources(**kwargs)


def test_resources_copy_their_mappings():
    limits = {"2MB": 0}
    r = Resources(hugepage_limits=limits)
    limits["1GB"] = 5
    assert dict(r.hugepage_limits) == {"2MB": 0}
    assert r == Resources(hugepage_limits={"2MB": 0})
    assert hash(r) == hash(Resources(hugepage_limits={"2MB": 0}))
    with pytest.raises(TypeError):
        r.hugepage_limits["1GB"] = 1  # type: ignore[index]


def test_unset_resources_write_nothing():
    assert v1_writes(Resources(), current_memory_limit=None, swap_accounting=True) == []
    assert v2_writes(Resources()) == []


@pytest.mark.parametrize(
    "resources, current, swap_accounting, expected",
    [
        (
            Resources(cpu_shares=512, cpu_period=100000, cpu_quota=50000),
            None, True,
            w(("cpu.shares", "512"), ("cpu.cfs_period_us", "100000"),
              ("cpu.cfs_quota_us", "50000")),
        ),
        (Resources(cpu_quota=-1), None, True, w(("cpu.cfs_quota_us", "-1"))),
        (
            Resources(cpuset_cpus="0-1,3", cpuset_mems="0"), None, True,
            w(("cpuset.cpus", "0-1,3"), ("cpuset.mems", "0")),
        ),
        (
            Resources(memory_limit_in_bytes=64 * MiB), None, True,
            w(("memory.limit_in_bytes", str(64 * MiB))),
        ),
        # A fresh cgroup (unlimited memory, unlimited memsw): memory first, then memsw.
        (
            Resources(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=128 * MiB),
            None, True,
            w(("memory.limit_in_bytes", str(64 * MiB)),
              ("memory.memsw.limit_in_bytes", str(128 * MiB))),
        ),
        # Growing past the current limit: memsw first.
        (
            Resources(memory_limit_in_bytes=256 * MiB, memory_swap_limit_in_bytes=256 * MiB),
            64 * MiB, True,
            w(("memory.memsw.limit_in_bytes", str(256 * MiB)),
              ("memory.limit_in_bytes", str(256 * MiB))),
        ),
        # Shrinking below the current limit: memory first.
        (
            Resources(memory_limit_in_bytes=32 * MiB, memory_swap_limit_in_bytes=32 * MiB),
            64 * MiB, True,
            w(("memory.limit_in_bytes", str(32 * MiB)),
              ("memory.memsw.limit_in_bytes", str(32 * MiB))),
        ),
        # Unlimited memory with swap unset lifts memsw too, and memsw has to go first.
        (
            Resources(memory_limit_in_bytes=-1), 64 * MiB, True,
            w(("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")),
        ),
        # No swap accounting on the node: no memsw file to write.
        (
            Resources(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=64 * MiB),
            None, False,
            w(("memory.limit_in_bytes", str(64 * MiB))),
        ),
        (Resources(pids_limit=50), None, True, w(("pids.max", "50"))),
        (Resources(pids_limit=-1), None, True, w(("pids.max", "max"))),
        (
            Resources(hugepage_limits={"2MB": 4 * MiB, "1GB": 0}), None, True,
            w(("hugetlb.1GB.limit_in_bytes", "0"), ("hugetlb.2MB.limit_in_bytes", str(4 * MiB))),
        ),
    ],
)
def test_v1_writes(resources, current, swap_accounting, expected):
    assert v1_writes(
        resources, current_memory_limit=current, swap_accounting=swap_accounting
    ) == expected


def test_v1_rejects_unified():
    with pytest.raises(InvalidArgument, match="cgroup v2"):
        v1_writes(Resources(unified={"memory.high": "1"}), current_memory_limit=None,
                  swap_accounting=True)


@pytest.mark.parametrize(
    "new_memsw, current, expected",
    [
        (-1, None, True),
        (-1, 64 * MiB, True),
        (128 * MiB, None, False),
        (128 * MiB, 64 * MiB, True),
        (64 * MiB, 64 * MiB, True),
        (32 * MiB, 64 * MiB, False),
    ],
)
def test_memsw_first(new_memsw, current, expected):
    assert memsw_first(new_memsw, current) is expected


@pytest.mark.parametrize(
    "shares, weight",
    # runc's and the kubelet's values (runc issue 4896: 2000 -> 170; 100m of CPU, 102 shares -> 17).
    [(0, 1), (1, 1), (2, 1), (3, 2), (1024, 100), (512, 59), (102, 17), (2000, 170), (262143, 10000),
     (262144, 10000), (10**6, 10000)],
)
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(
    "resources, expected",
    [
        (Resources(cpu_shares=1024), w(("cpu.weight", "100"))),
        (Resources(cpu_quota=50000, cpu_period=100000), w(("cpu.max", "50000 100000"))),
        (Resources(cpu_quota=-1, cpu_period=100000), w(("cpu.max", "max 100000"))),
        # Period without quota: the kubelet's "no CPU limit".
        (Resources(cpu_period=100000), w(("cpu.max", "max 100000"))),
        # Quota alone keeps the period in force.
        (Resources(cpu_quota=20000), w(("cpu.max", "20000"))),
        (
            Resources(cpuset_cpus="1", cpuset_mems="0"),
            w(("cpuset.cpus", "1"), ("cpuset.mems", "0")),
        ),
        (Resources(memory_limit_in_bytes=64 * MiB), w(("memory.max", str(64 * MiB)))),
        (
            Resources(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=64 * MiB),
            w(("memory.max", str(64 * MiB)), ("memory.swap.max", "0")),
        ),
        (
            Resources(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=96 * MiB),
            w(("memory.max", str(64 * MiB)), ("memory.swap.max", str(32 * MiB))),
        ),
        (
            Resources(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=-1),
            w(("memory.max", str(64 * MiB)), ("memory.swap.max", "max")),
        ),
        (
            Resources(memory_limit_in_bytes=-1),
            w(("memory.max", "max"), ("memory.swap.max", "max")),
        ),
        (Resources(pids_limit=50), w(("pids.max", "50"))),
        (Resources(hugepage_limits={"2MB": 0}), w(("hugetlb.2MB.max", "0"))),
        # Unified goes last so it overrides the mapped values.
        (
            Resources(memory_limit_in_bytes=64 * MiB,
                      unified={"memory.high": "50331648", "cpu.idle": "1"}),
            w(("memory.max", str(64 * MiB)), ("cpu.idle", "1"), ("memory.high", "50331648")),
        ),
    ],
)
def test_v2_writes(resources, expected):
    assert v2_writes(resources) == expected


@pytest.mark.parametrize("memory", [0, -1])
def test_v2_swap_needs_a_memory_limit(memory):
    with pytest.raises(InvalidArgument, match="needs a memory limit"):
        v2_writes(Resources(memory_limit_in_bytes=memory, memory_swap_limit_in_bytes=64 * MiB))


@pytest.mark.parametrize(
    "name, controller",
    [("memory.max", "memory"), ("hugetlb.2MB.max", "hugetlb"), ("cpu.cfs_quota_us", "cpu"),
     ("cpuset.cpus", "cpuset"), ("cgroup.max.depth", "cgroup")],
)
def test_controller_of(name, controller):
    assert controller_of(name) == controller
