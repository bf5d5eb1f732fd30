"""Records and a reader over the fake trees in tests/fixtures/metrics/{v1,v2} (shared by the
stats, CRI stats and metrics tests).

The scene: pod shop/web-0 with a cgroup_parent (its own cgroup) running "app" (2 processes, CPU
quota, memory limit) and "sidecar" (created from an image id), plus an exited "init"; pod
jobs/batch-1 without a cgroup_parent running "worker" (its usage is summed); a stopped pod.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, container_path, parent_path
from runtime.cgroups.resources import Resources
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager
from runtime.container.model import ContainerConfig
from runtime.container.record import Container
from runtime.process.initspec import InitSpec
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.record import Sandbox
from runtime.stats.devices import DeviceNames
from runtime.stats.netdev import PodNetwork
from runtime.stats.reader import StatsReader
from runtime.stats.sample import Filesystem

FIXTURES = Path(__file__).parents[2] / "fixtures" / "metrics"
NOW = 1_700_000_000_123_456_789
POD_UID = "6f1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff"
WEB, BATCH, STOPPED = "a" * 63 + "1", "b" * 63 + "2", "d" * 63 + "3"
APP = "c0ffee" + "0" * 52 + "000001"
SIDE = "c0ffee" + "0" * 52 + "000002"
WORKER = "beef00" + "0" * 52 + "000003"
INIT = "c0ffee" + "0" * 52 + "000004"
BUSYBOX_ID = "sha256:" + "e" * 64
PARENTS = {CgroupDriver.CGROUPFS: f"/kubepods/burstable/pod{POD_UID}",
           CgroupDriver.SYSTEMD: f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice"}


def tree(version: str) -> Path:
    return FIXTURES / version


def driver_of(version: str) -> CgroupDriver:
    return CgroupDriver.CGROUPFS if version == "v1" else CgroupDriver.SYSTEMD


def sandbox(sandbox_id: str, name: str, namespace: str, version: str, *, cgroup_parent: str = "",
            stopped: bool = False, created_at: int = NOW - 3600 * 10**9) -> Sandbox:
    netns = str(tree(version) / "net" / name)
    config = SandboxConfig(name=name, uid=f"uid-{name}", namespace=namespace, cgroup_parent=cgroup_parent,
                           labels={"app": name})
    paths = SandboxPaths(dir="/run/pycrid/sandboxes/" + sandbox_id, netns=netns, ipcns="", utsns="", pidns="",
                         hosts="", resolv_conf="", hostname="", shm="")
    return Sandbox(sandbox_id, config, paths, created_at=created_at, stopped_at=NOW if stopped else 0)


def container(container_id: str, pod: Sandbox, name: str, version: str, *, pid: int = 0, image: str,
              image_ref: str = "", resources: Resources = Resources(), state: str = "running",
              started_at: int = NOW - 600 * 10**9) -> Container:
    driver = driver_of(version)
    cgroup = container_path(driver, pod.config.cgroup_parent or ("/pycrid" if driver is CgroupDriver.CGROUPFS
                                                                  else "pycrid.slice"), container_id)
    spec = InitSpec(id=container_id, args=("sleep",), env=(), cwd="/", lowerdirs=(),
                    upperdir=f"/var/lib/pycrid/containers/{container_id}/upper", workdir="", rootfs="")
    config = ContainerConfig(name=name, attempt=0, image=image, resources=resources, labels={"tier": name})
    c = Container(container_id, pod.id, config, image_id=BUSYBOX_ID, image_ref=image_ref or image, spec=spec,
                  cgroup=cgroup, created_at=started_at - 10**9)
    if state in ("running", "exited"):
        c = replace(c, started_at=started_at, pid=pid)
    if state == "exited":
        c = replace(c, finished_at=NOW - 10**9, exit_code=0, reason="Completed")
    return c


def scene(version: str) -> tuple[list[Sandbox], list[Container]]:
    web = sandbox(WEB, "web-0", "shop", version, cgroup_parent=PARENTS[driver_of(version)])
    batch = sandbox(BATCH, "batch-1", "jobs", version, created_at=NOW - 7200 * 10**9)
    stopped = sandbox(STOPPED, "old-0", "jobs", version, stopped=True)
    limits = Resources(cpu_period=100_000, cpu_quota=50_000, cpu_shares=512, memory_limit_in_bytes=268_435_456)
    containers = [
        container(APP, web, "app", version, pid=4242, image="docker.io/library/nginx:1.25", resources=limits),
        container(SIDE, web, "sidecar", version, pid=4343, image=BUSYBOX_ID,
                  image_ref="docker.io/library/busybox@sha256:" + "f" * 64),
        container(INIT, web, "init", version, pid=4000, image="docker.io/library/busybox:1.36", state="exited"),
        container(WORKER, batch, "worker", version, pid=5151, image="registry.example/jobs/worker:7"),
    ]
    return [web, batch, stopped], containers


def layer_usage(upperdir: str) -> Filesystem:
    # Deterministic stand-in for a walk of the writable layer (block counts depend on the disk).
    used = 4096 * (1 + len(upperdir) % 7)
    return Filesystem(device="/dev/vda1", mountpoint=upperdir, used_bytes=used, inodes_used=used // 4096 + 2,
                      capacity_bytes=20_957_446_144, inodes_total=1_310_720, inodes_free=1_015_204)


def fake_netns(path: str, fn):  # noqa: ANN001, ANN202 - stands in for run_in_netns
    return Path(path).read_text()


def reader(version: str, clock: int = NOW, cgroups: CgroupManager | None = None,
           base: Path | None = None) -> StatsReader:
    """Over the fake tree of ``version``, or over ``base``, a copy of it."""
    base = base or tree(version)
    if cgroups is None:
        cgroups = V1Manager(str(base / "cgroup")) if version == "v1" else V2Manager(str(base / "cgroup"))
    return StatsReader(cgroups, driver_of(version), proc_root=str(base / "proc"),
                       devices=DeviceNames(str(base / "sys"), str(base / "mountinfo")),
                       network=PodNetwork(str(base / "proc"), in_netns=fake_netns),
                       layer_usage=layer_usage, clock=lambda: clock)


class Records:
    """Stands in for a RecordStore: what the collector reads."""

    def __init__(self, items: list) -> None:
        self.items = items

    def all(self) -> list:
        return list(self.items)


def pod_cgroup(version: str) -> str:
    return parent_path(driver_of(version), PARENTS[driver_of(version)])
