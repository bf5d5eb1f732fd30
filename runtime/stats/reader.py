"""One usage sample per container and per pod, read now (the single reader of DESIGN §8).

Container samples: the container's cgroup, the processes in it (/proc), its writable layer.
Pod samples: the pod cgroup when the kubelet gave the pod a cgroup_parent that exists, otherwise
the sum of its running containers (aggregate.py); the pod's network namespace; the containers.
Only running containers have cgroup usage: a created one has no cgroup yet and an exited one is
done (containerd reports the same). The writable layer is measured in every state, its tree walked
at most every 10 s (layerusage.py says why).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, parent_path
from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.container.record import Container, State
from runtime.errors import InvalidArgument
from runtime.sandbox.record import Sandbox
from runtime.stats.aggregate import sum_processes, sum_stats
from runtime.stats.devices import DeviceNames
from runtime.stats.layerusage import RecentTreeUsage
from runtime.stats.netdev import PodNetwork
from runtime.stats.procfs import PROC, counts_if_alone, process_counts
from runtime.stats.sample import Filesystem, Labels, NamedIO, PodSample, Processes, Sample, Spec

LayerUsage = Callable[[str], Filesystem | None]


class StatsReader:
    def __init__(self, cgroups: CgroupManager, driver: CgroupDriver, *, proc_root: str = PROC,
                 devices: DeviceNames | None = None, network: PodNetwork | None = None,
                 layer_usage: LayerUsage | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        self._cgroups = cgroups
        self._driver = driver
        self._proc = proc_root
        self._devices = devices or DeviceNames()
        self._network = network or PodNetwork(proc_root)
        self._layer_usage = layer_usage or self._writable_layer
        self._clock = clock
        self._tree_usage = RecentTreeUsage()  # the one value not read afresh every time (layerusage.py)

    def container(self, c: Container, sandbox: Sandbox | None) -> Sample:
        now = self._clock()
        stats, processes = CgroupStats(), None
        if c.state == State.RUNNING:
            stats = self._cgroups.stats(c.cgroup)
            processes = self._processes(c, stats.pids.current)
        pod = sandbox.config if sandbox else None
        labels = Labels(id=c.cgroup, name=c.id, image=image_label(c), pod=pod.name if pod else "",
                        namespace=pod.namespace if pod else "", container=c.config.name)
        return Sample(timestamp_ns=now, labels=labels, start_time_ns=c.started_at or c.created_at,
                      cgroup=stats, spec=spec(c.config.resources), processes=processes, io=self._named(stats),
                      writable_layer=self._layer_usage(c.spec.upperdir) if c.spec.upperdir else None)

    def _processes(self, c: Container, tasks: int | None) -> Processes:
        # Most containers are one process (threads aside): when the init's threads are all the
        # tasks the cgroup counts, its pid list is not read (a file that cannot be kept open).
        if c.pid > 0 and tasks is not None:
            alone = counts_if_alone(c.pid, tasks, self._proc)
            if alone is not None:
                return alone
        return process_counts(self._cgroups.pids(c.cgroup), self._proc)

    def pod(self, sandbox: Sandbox, containers: Sequence[Container]) -> PodSample:
        """``containers``: the pod's containers (any state); their samples come along."""
        samples = tuple(self.container(c, sandbox) for c in containers)
        running = [sample for sample, c in zip(samples, containers) if c.state == State.RUNNING]
        now = self._clock()
        cgroup = self._parent(sandbox)
        stats = self._cgroups.stats(cgroup) if cgroup else CgroupStats()
        if stats == CgroupStats():  # no cgroup_parent, or one that does not exist (read as all None)
            cgroup = None
        if cgroup is not None:
            # The running containers' processes were just counted, and the pause's cgroup holds
            # only the pause, whose pid is known: the pod cgroup is listed only when its task
            # count says someone else is in it, and then without the cgroups pycrid made.
            pause = [sandbox.pause_pid] if sandbox.cgroup and sandbox.pause_pid else []
            listed = []
            if others_in_pod(stats.pids.current, [s.cgroup.pids.current for s in running], len(pause)):
                counted = [c.cgroup for c in containers if c.state == State.RUNNING]
                listed = self._cgroups.pids(cgroup, skip=[*counted, *([sandbox.cgroup] if pause else [])])
            others = process_counts([*listed, *pause], self._proc)
            processes = sum_processes([*(s.processes for s in running), others])
        else:
            stats = sum_stats([s.cgroup for s in running])
            processes = sum_processes([s.processes for s in running])
        network = None
        if sandbox.paths.netns and sandbox.ready:
            pids = [c.pid for c in containers if c.state == State.RUNNING] + [sandbox.pause_pid]
            network = self._network.interfaces(sandbox.paths.netns, pids)
        labels = Labels(id=cgroup or "", pod=sandbox.config.name, namespace=sandbox.config.namespace)
        pod = Sample(timestamp_ns=now, labels=labels, start_time_ns=sandbox.created_at, cgroup=stats,
                     spec=spec(sandbox.config.resources), processes=processes, io=self._named(stats),
                     network=network)
        return PodSample(pod=pod, containers=samples)

    def pod_cgroup(self, sandbox: Sandbox) -> str | None:
        """The pod's own cgroup: its cgroup_parent, when set and present."""
        path = self._parent(sandbox)
        return path if path and self._cgroups.exists(path) else None

    def _parent(self, sandbox: Sandbox) -> str | None:
        if not sandbox.config.cgroup_parent:
            return None
        try:
            path = parent_path(self._driver, sandbox.config.cgroup_parent)
        except InvalidArgument:
            return None
        return None if path == "/" else path

    def _named(self, stats: CgroupStats) -> tuple[NamedIO, ...]:
        return tuple(NamedIO(self._devices.name(d.major, d.minor), d) for d in stats.io or ())

    def _writable_layer(self, upperdir: str) -> Filesystem | None:
        try:
            device = self._devices.of_path(upperdir)
            fs = os.statvfs(upperdir)
        except FileNotFoundError:
            return None
        usage = self._tree_usage(upperdir)
        return Filesystem(device=device, mountpoint=upperdir, used_bytes=usage.used_bytes,
                          inodes_used=usage.inodes_used, capacity_bytes=fs.f_blocks * fs.f_frsize,
                          inodes_total=fs.f_files, inodes_free=fs.f_ffree)


def others_in_pod(pod_tasks: int | None, container_tasks: Sequence[int | None], pauses: int) -> bool:
    """Whether a pod cgroup may hold tasks besides its running containers' and its (one-threaded)
    pause's. The pids controller counts every task of the subtree: when those account for all of
    them, nobody else needs listing. Without the counts, anybody may be there."""
    if pod_tasks is None:
        return True
    counted = pauses
    for tasks in container_tasks:
        if tasks is None:
            return True
        counted += tasks
    return pod_tasks != counted


def spec(r: Resources) -> Spec:
    """cAdvisor's container_spec_* values from the configured resources (pure)."""
    return Spec(cpu_period=r.cpu_period or 100_000, cpu_quota=max(r.cpu_quota, 0),
                cpu_shares=r.cpu_shares or 1024, memory_limit=max(r.memory_limit_in_bytes, 0),
                memory_swap_limit=max(r.memory_swap_limit_in_bytes, 0))


def image_label(c: Container) -> str:
    """The image as a name when there is one: what the container was created from, unless that
    was an image id (the kubelet creates from ids), then its repo digest."""
    image = c.config.image
    if image.startswith("sha256:") or (len(image) == 64 and all(ch in "0123456789abcdef" for ch in image)):
        return c.image_ref
    return image



