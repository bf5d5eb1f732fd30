"""UpdatePodSandboxResources (in-place pod resize): what pycrid writes to the pod's cgroup, and why.

What the kubelet does (v1.36, kuberuntime_manager.go doPodResizeAction): for CPU and for memory
apart, it first calls UpdatePodSandboxResources with the pod's new totals (the overhead sent
beside them), and "if this fails, the runtime has rejected the resize"; then it writes the pod
cgroup itself (the pod cgroup is the kubelet's), and on failure calls again with the old totals.
Limits grow before the containers' and shrink after them.

containerd 2.x records the values (and hands them to NRI plugins) and writes nothing. pycrid writes
them to the pod cgroup too, through the cgroup code its containers use (v1 and v2):
- the kernel's refusal then reaches the kubelet before it commits to the resize (cgroup v1 refuses
  a memory limit below the pod's usage with EBUSY, a CFS quota below a container's with EINVAL;
  v2 would OOM-kill to fit the memory limit, so pycrid tries it as memory.high first and refuses
  it likewise, runtime/cgroups/v2.py), which is what asking the runtime first is for;
- a client without a cgroup manager of its own (crictl) gets a working pod resize;
- the kubelet's own write that follows carries the same values (its pod cgroup config is these
  totals plus the overhead; CPU shares to a rounding), so the two never disagree.
Only what the kubelet resizes at pod level is written: CPU shares, CFS quota and period, memory
limit. The rest of the request (cpusets, huge pages, unified) is recorded, not written. A pod
without a cgroup_parent of its own has no pod cgroup (its containers share pycrid's default
parent with every such pod), and a pod that is not ready runs nothing: theirs are only recorded.
"""
from __future__ import annotations

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, parent_path
from runtime.cgroups.resources import Resources
from runtime.sandbox.record import Sandbox


def pod_cgroup_limits(overhead: Resources, resources: Resources) -> Resources:
    """The pod cgroup's limits: the pod's totals plus the overhead, as the kubelet sums them;
    an unset (0) or unlimited (-1) total stays as it is."""
    def plus_overhead(total: int, extra: int) -> int:
        return total + max(extra, 0) if total > 0 else total

    return Resources(cpu_period=resources.cpu_period,
                     cpu_quota=plus_overhead(resources.cpu_quota, overhead.cpu_quota),
                     cpu_shares=plus_overhead(resources.cpu_shares, overhead.cpu_shares),
                     memory_limit_in_bytes=plus_overhead(resources.memory_limit_in_bytes,
                                                         overhead.memory_limit_in_bytes))


def pod_cgroup(sandbox: Sandbox, driver: CgroupDriver) -> str:
    """The pod's own cgroup, "" when it has none to write (see above)."""
    if not sandbox.ready or not sandbox.config.cgroup_parent:
        return ""
    return parent_path(driver, sandbox.config.cgroup_parent)


def write_pod_limits(cgroups: CgroupManager, path: str, limits: Resources) -> None:
    """Applies ``limits`` to the pod cgroup; made (with its parents) if it is missing, as a
    container's start makes it for a client that made none."""
    if cgroups.exists(path):
        cgroups.apply(path, limits)
    else:
        cgroups.create(path, limits)
