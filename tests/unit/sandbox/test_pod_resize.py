"""UpdatePodSandboxResources: the pod cgroup's limits (the pod's totals plus the overhead, as the
kubelet sums them), written on cgroup v1 and v2 for a ready pod with a cgroup of its own, and
recorded only once written; a refusal by the kernel reaches the caller and changes nothing."""
from __future__ import annotations

import errno
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.convert_sandbox import pod_resources
from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.resources import UNLIMITED, Resources
from runtime.cgroups.testing import FakeCgroupManager
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.events.testing import RecordedEvents
from runtime.linux.testing import FakeSyscalls
from runtime.locks import KeyedLocks
from runtime.network.testing import FakeNetworkPlugin
from runtime.process.testing import FakeMonitors, FakeWatches
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.processes import PodProcesses
from runtime.sandbox.record import Sandbox
from runtime.sandbox.resize import pod_cgroup, pod_cgroup_limits, write_pod_limits
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore

MiB = 1 << 20
CGROUP_FIXTURES = Path(__file__).parents[2] / "fixtures" / "cgroupfs"
V1_POD = "/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666"
V2_POD_SLICE = "kubepods-burstable-pod0a1b2c3d_1111_2222_3333_444455556666.slice"
V2_POD = "/kubepods.slice/kubepods-burstable.slice/" + V2_POD_SLICE
OVERHEAD = Resources(cpu_period=100000, cpu_quota=25000, cpu_shares=256, memory_limit_in_bytes=32 * MiB)
TOTALS = Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=128 * MiB,
                   cpuset_cpus="0")


def test_the_pod_cgroup_gets_the_totals_plus_the_overhead() -> None:
    assert pod_cgroup_limits(OVERHEAD, TOTALS) == Resources(
        cpu_period=100000, cpu_quota=75000, cpu_shares=768, memory_limit_in_bytes=160 * MiB)


def test_without_overhead_the_totals_are_the_limits_and_only_pod_level_fields_are_written() -> None:
    assert pod_cgroup_limits(Resources(), TOTALS) == replace(TOTALS, cpuset_cpus="")


def test_unlimited_and_unset_totals_stay_so() -> None:
    limits = pod_cgroup_limits(OVERHEAD, Resources(cpu_period=100000, cpu_quota=UNLIMITED, cpu_shares=0,
                                                   memory_limit_in_bytes=UNLIMITED))
    assert (limits.cpu_quota, limits.cpu_shares, limits.memory_limit_in_bytes) == (UNLIMITED, 0, UNLIMITED)


def test_the_kubelet_s_unlimited_minus_overhead_is_unlimited() -> None:
    # It subtracts the overhead from -1 (no limit) and sends the difference.
    wire = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=-1 - 25000, cpu_shares=512,
                                      memory_limit_in_bytes=-1 - 32 * MiB)
    totals = pod_resources(wire)
    assert (totals.cpu_quota, totals.memory_limit_in_bytes) == (UNLIMITED, UNLIMITED)
    with pytest.raises(InvalidArgument):  # anything else still has to be valid
        pod_resources(pb.LinuxContainerResources(cpu_period=5))


def record(parent: str, *, ready: bool = True) -> Sandbox:
    paths = SandboxPaths(dir="/run/p", netns="", ipcns="", utsns="", pidns="", hosts="", resolv_conf="",
                         hostname="", shm="")
    return Sandbox("p" * 64, SandboxConfig(name="web", uid="u", namespace="n", cgroup_parent=parent), paths,
                   created_at=1, stopped_at=0 if ready else 2)


def test_which_pods_have_a_cgroup_to_write() -> None:
    assert pod_cgroup(record(V1_POD), CgroupDriver.CGROUPFS) == V1_POD
    assert pod_cgroup(record(V2_POD_SLICE), CgroupDriver.SYSTEMD) == V2_POD
    assert pod_cgroup(record(""), CgroupDriver.CGROUPFS) == ""  # pycrid's parent, shared by such pods
    assert pod_cgroup(record(V1_POD, ready=False), CgroupDriver.CGROUPFS) == ""


def test_cgroup_v1_files_up_and_down(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(CGROUP_FIXTURES / "v1", tmp_path / "v1"))
    cgroups = V1Manager(str(tree))

    def files() -> tuple[str, ...]:
        return tuple((tree / h / V1_POD.lstrip("/") / f).read_text() for h, f in (
            ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"),
            ("memory", "memory.limit_in_bytes")))

    write_pod_limits(cgroups, V1_POD, pod_cgroup_limits(OVERHEAD, TOTALS))
    assert files() == ("768", "75000", "100000", str(160 * MiB))
    write_pod_limits(cgroups, V1_POD, pod_cgroup_limits(Resources(), Resources(
        cpu_period=100000, cpu_quota=20000, cpu_shares=204, memory_limit_in_bytes=64 * MiB)))
    assert files() == ("204", "20000", "100000", str(64 * MiB))


def test_cgroup_v2_files_up_and_down(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(CGROUP_FIXTURES / "v2", tmp_path / "v2"))
    cgroups = V2Manager(str(tree))

    def files() -> tuple[str, ...]:
        return tuple((tree / V2_POD.lstrip("/") / f).read_text() for f in ("cpu.weight", "cpu.max", "memory.max"))

    write_pod_limits(cgroups, V2_POD, pod_cgroup_limits(OVERHEAD, TOTALS))
    # cpu.weight by the kubelet's log-scale conversion: 768 shares weigh 80, 204 weigh 29.
    assert files() == ("80", "75000 100000", str(160 * MiB))
    write_pod_limits(cgroups, V2_POD, pod_cgroup_limits(Resources(), Resources(
        cpu_period=100000, cpu_quota=UNLIMITED, cpu_shares=204, memory_limit_in_bytes=UNLIMITED)))
    assert files() == ("29", "max 100000", "max")


def test_a_limit_the_kernel_refuses_for_what_is_in_use_is_a_failed_precondition(tmp_path: Path,
                                                                                monkeypatch) -> None:
    tree = Path(shutil.copytree(CGROUP_FIXTURES / "v1", tmp_path / "v1"))
    real_write = os.write

    def busy(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("memory.limit_in_bytes"):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", busy)
    with pytest.raises(FailedPrecondition, match="memory.limit_in_bytes"):
        write_pod_limits(V1Manager(str(tree)), V1_POD, Resources(memory_limit_in_bytes=4 * MiB))


class NoContainers:
    def stop_in_pod(self, sandbox_id: str) -> None: ...

    def remove_in_pod(self, sandbox_id: str) -> None: ...

    def fail_in_pod(self, sandbox_id: str, why: str) -> None: ...


class NoInfraImage:
    def get(self) -> None:
        return None


@pytest.fixture
def parts(tmp_path: Path):
    store: RecordStore[Sandbox] = RecordStore(tmp_path / "records", "sandbox", encode, lambda d: decode(Sandbox, d))
    monitors, cgroups = FakeMonitors(), FakeCgroupManager()
    processes = PodProcesses(monitors, FakeWatches(), FakeCgroupManager(), NoInfraImage(),  # type: ignore[arg-type]
                             str(tmp_path / "run" / "sandboxes"))
    manager = SandboxManager(store, processes, FakeNetworkPlugin(), FakeSyscalls(), str(tmp_path / "run"),
                             NoContainers(), KeyedLocks(), CgroupDriver.CGROUPFS, clock=lambda: 1,
                             events=RecordedEvents(), cgroups=cgroups)
    yield manager, store, cgroups
    monitors.kill_all()


def test_a_resize_writes_the_pod_cgroup_then_records_the_values(parts) -> None:
    manager, store, cgroups = parts
    pod = manager.run(SandboxConfig(name="web", uid="u1", namespace="prod", cgroup_parent=V1_POD))
    manager.update_resources(pod[:12], OVERHEAD, TOTALS)  # a unique prefix names it, as everywhere
    assert cgroups.resources[V1_POD] == pod_cgroup_limits(OVERHEAD, TOTALS)
    config = store.get(pod).config
    assert (config.overhead, config.resources) == (OVERHEAD, TOTALS)


def test_a_refused_resize_changes_nothing(parts) -> None:
    manager, store, cgroups = parts
    pod = manager.run(SandboxConfig(name="web", uid="u1", namespace="prod", cgroup_parent=V1_POD))
    manager.update_resources(pod, Resources(), TOTALS)
    cgroups.errors["apply"] = FailedPrecondition("memory.limit_in_bytes: busy")
    with pytest.raises(FailedPrecondition):
        manager.update_resources(pod, Resources(), replace(TOTALS, memory_limit_in_bytes=4 * MiB))
    assert store.get(pod).config.resources == TOTALS


def test_pods_without_a_cgroup_of_their_own_or_not_ready_are_recorded_only(parts) -> None:
    manager, store, cgroups = parts
    shared = manager.run(SandboxConfig(name="a", uid="u1", namespace="prod"))
    stopped = manager.run(SandboxConfig(name="b", uid="u2", namespace="prod", cgroup_parent=V1_POD))
    manager.stop(stopped)
    for pod in (shared, stopped):
        manager.update_resources(pod, Resources(), TOTALS)
        assert store.get(pod).config.resources == TOTALS
    assert cgroups.resources == {}
