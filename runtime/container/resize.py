"""UpdateContainerResources: the limits a container has after an update (pure).

An update names only what it changes. As everywhere in the CRI, a zero or empty field is "not
set" and keeps the value in force (``crictl update --memory`` leaves the CPU alone; the cgroup
write skips it too), the way containerd applies an update to a copy of the container's spec. The
record keeps the result, and ContainerStatus.resources reports it, also after an agent restart.
"""
from __future__ import annotations

from dataclasses import replace

from runtime.cgroups.resources import UNLIMITED, Resources

_SCALARS = ("cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes", "memory_swap_limit_in_bytes",
            "cpuset_cpus", "cpuset_mems")


def updated_limits(current: Resources, update: Resources) -> Resources:
    """``current`` with what ``update`` sets. oom_score_adj stays: it belongs to the container's
    process, set by its init at start, and an update writes cgroup files only."""
    changes: dict[str, object] = {name: getattr(update, name) for name in _SCALARS if getattr(update, name)}
    if update.memory_limit_in_bytes == UNLIMITED and not update.memory_swap_limit_in_bytes:
        # The write made swap unlimited along with memory (resources.py, _effective_swap): an
        # unset swap says so again, where the old swap limit would not.
        changes["memory_swap_limit_in_bytes"] = 0
    return replace(current, **changes,  # type: ignore[arg-type]
                   hugepage_limits={**current.hugepage_limits, **update.hugepage_limits},
                   unified={**current.unified, **update.unified})
