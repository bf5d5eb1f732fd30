"""What a container's record (and so ContainerStatus.resources) holds after UpdateContainerResources:
the fields an update sets, and the rest as they were."""
from __future__ import annotations

import pytest

from runtime.cgroups.resources import UNLIMITED, Resources
from runtime.container.resize import updated_limits
from runtime.errors import InvalidArgument

CREATED = Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 << 20,
                    oom_score_adj=900, cpuset_cpus="0-1", hugepage_limits={"2MB": 0},
                    unified={"memory.high": "max"})


def test_an_update_changes_what_it_sets_and_keeps_the_rest() -> None:
    after = updated_limits(CREATED, Resources(memory_limit_in_bytes=128 << 20))
    assert after == Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=128 << 20,
                              oom_score_adj=900, cpuset_cpus="0-1", hugepage_limits={"2MB": 0},
                              unified={"memory.high": "max"})


def test_a_kubelet_resize_sets_cpu_and_memory_together() -> None:
    resize = Resources(cpu_period=100000, cpu_quota=20000, cpu_shares=204, memory_limit_in_bytes=32 << 20,
                       oom_score_adj=-997)
    after = updated_limits(CREATED, resize)
    assert (after.cpu_quota, after.cpu_shares, after.memory_limit_in_bytes) == (20000, 204, 32 << 20)
    assert after.oom_score_adj == 900  # the process keeps the score its init gave it
    assert after.cpuset_cpus == "0-1"


def test_unlimited_values_are_values() -> None:
    after = updated_limits(CREATED, Resources(cpu_quota=UNLIMITED, memory_limit_in_bytes=UNLIMITED))
    assert (after.cpu_quota, after.memory_limit_in_bytes) == (UNLIMITED, UNLIMITED)


def test_unlimited_memory_without_a_swap_limit_leaves_swap_unlimited_too() -> None:
    capped = Resources(memory_limit_in_bytes=64 << 20, memory_swap_limit_in_bytes=128 << 20)
    assert updated_limits(capped, Resources(memory_limit_in_bytes=UNLIMITED)).memory_swap_limit_in_bytes == 0
    assert updated_limits(capped, Resources(memory_limit_in_bytes=96 << 20)).memory_swap_limit_in_bytes == 128 << 20


def test_memory_above_the_swap_limit_in_force_is_refused() -> None:
    capped = Resources(memory_limit_in_bytes=64 << 20, memory_swap_limit_in_bytes=128 << 20)
    with pytest.raises(InvalidArgument, match="less than the memory limit"):  # as cgroup v1 refuses it
        updated_limits(capped, Resources(memory_limit_in_bytes=256 << 20))


def test_page_sizes_and_unified_keys_merge_one_by_one() -> None:
    after = updated_limits(CREATED, Resources(hugepage_limits={"1GB": 0, "2MB": 4 << 20},
                                              unified={"memory.oom.group": "1"}))
    assert dict(after.hugepage_limits) == {"2MB": 4 << 20, "1GB": 0}
    assert dict(after.unified) == {"memory.high": "max", "memory.oom.group": "1"}


def test_an_empty_update_changes_nothing() -> None:
    assert updated_limits(CREATED, Resources()) == CREATED
