from __future__ import annotations

import shutil
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.cgroups.testing import FakeCgroupManager
from runtime.cgroups.paths import CgroupDriver
from runtime.stats.reader import StatsReader, image_label, others_in_pod, spec
from runtime.stats.sample import Labels, Processes, Spec
from tests.unit.stats.builders import (APP, BATCH, BUSYBOX_ID, NOW, SIDE, WEB, WORKER, layer_usage, pod_cgroup,
                                       reader, scene, tree)


def pods(version: str) -> dict:
    sandboxes, containers = scene(version)
    r = reader(version)
    return {s.id: r.pod(s, [c for c in containers if c.sandbox_id == s.id]) for s in sandboxes}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_pod_with_a_cgroup_parent_reads_its_own_cgroup(version: str) -> None:
    web = pods(version)[WEB]
    assert web.pod.labels == Labels(id=pod_cgroup(version), pod="web-0", namespace="shop")
    assert web.pod.cgroup.cpu.usage_ns == 3_250_000_000  # the pod cgroup's, not a sum
    assert web.pod.processes == Processes(count=3, threads=4, fds=13, sockets=3)
    assert [i.name for i in web.pod.network] == ["eth0"]
    assert web.pod.writable_layer is None
    assert web.pod.start_time_ns == NOW - 3600 * 10**9


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_pod_counts_its_pause_process_from_its_own_cgroup(version: str, tmp_path: Path) -> None:
    base = tmp_path / version
    shutil.copytree(tree(version), base, symlinks=True)
    sandboxes, containers = scene(version)
    web = replace(sandboxes[0], cgroup=f"{pod_cgroup(version)}/{WEB}", pause_pid=4999)
    pause_dir = Path(f"{base}/cgroup/{'freezer/' if version == 'v1' else ''}{web.cgroup.lstrip('/')}")
    pause_dir.mkdir(parents=True)
    (pause_dir / "cgroup.procs").write_text("4999\n")
    (base / "proc" / "4999" / "fd").mkdir(parents=True)
    (base / "proc" / "4999" / "stat").write_text(
        (tree(version) / "proc" / "4343" / "stat").read_text().replace("4343 (sleep)", "4999 (pause)"))
    pod = reader(version, base=base).pod(web, [c for c in containers if c.sandbox_id == WEB]).pod
    assert pod.processes == Processes(count=4, threads=5, fds=13, sockets=3)  # one more than without


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_process_of_the_pod_outside_its_containers_is_listed_when_the_counts_show_it(
        version: str, tmp_path: Path) -> None:
    base = tmp_path / version
    shutil.copytree(tree(version), base, symlinks=True)
    pod_dir = Path(f"{base}/cgroup/{'freezer/' if version == 'v1' else ''}{pod_cgroup(version).lstrip('/')}")
    (pod_dir / "cgroup.procs").write_text("4999\n")
    (base / "proc" / "4999" / "fd").mkdir(parents=True)
    (base / "proc" / "4999" / "stat").write_text(
        (tree(version) / "proc" / "4343" / "stat").read_text().replace("4343 (sleep)", "4999 (other)"))
    sandboxes, containers = scene(version)
    web_containers = [c for c in containers if c.sandbox_id == WEB]
    # 4 tasks, all the containers': the pod cgroup is not listed.
    assert reader(version, base=base).pod(sandboxes[0], web_containers).pod.processes.count == 3
    pids_dir = Path(f"{base}/cgroup/{'pids/' if version == 'v1' else ''}{pod_cgroup(version).lstrip('/')}")
    (pids_dir / "pids.current").write_text("5\n")  # one task more than the containers have
    assert reader(version, base=base).pod(sandboxes[0], web_containers).pod.processes == Processes(
        count=4, threads=5, fds=13, sockets=3)


@pytest.mark.parametrize("pod_tasks, container_tasks, pauses, expected", [
    (4, [3, 1], 0, False), (5, [3, 1], 1, False), (5, [3, 1], 0, True), (3, [3, 1], 0, True),
    (None, [3], 0, True), (4, [3, None], 0, True), (0, [], 0, False),
])
def test_others_in_pod(pod_tasks, container_tasks, pauses, expected) -> None:  # noqa: ANN001
    assert others_in_pod(pod_tasks, container_tasks, pauses) is expected


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_pod_without_one_sums_its_running_containers(version: str) -> None:
    batch = pods(version)[BATCH]
    worker = batch.containers[0]
    assert batch.pod.labels == Labels(id="", pod="batch-1", namespace="jobs")
    assert batch.pod.cgroup.cpu == worker.cgroup.cpu
    assert batch.pod.cgroup.memory.working_set_bytes == worker.cgroup.memory.working_set_bytes
    assert batch.pod.processes == worker.processes
    assert batch.pod.cgroup.memory.limit_bytes is None and batch.pod.cgroup.cpu_pressure is None


def test_containers_carry_the_cadvisor_labels_and_only_running_ones_have_usage() -> None:
    web = pods("v1")[WEB]
    app, side, init = web.containers
    assert app.labels.name == APP and app.labels.container == "app" and app.labels.pod == "web-0"
    assert app.labels.id.endswith("/" + APP) and app.labels.image == "docker.io/library/nginx:1.25"
    assert side.labels.image.startswith("docker.io/library/busybox@sha256:")  # created from an image id
    assert app.spec == Spec(cpu_period=100_000, cpu_quota=50_000, cpu_shares=512, memory_limit=268_435_456)
    assert app.processes == Processes(count=2, threads=3, fds=10, sockets=3)
    assert [d.device for d in app.io] == ["/dev/vda"]
    assert init.cgroup == CgroupStats() and init.processes is None  # exited
    assert init.writable_layer is not None  # the layer is still there to measure


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_container_of_one_process_is_counted_without_listing_its_cgroup(version: str) -> None:
    listed: list[str] = []
    r = reader(version)
    cgroups = r._cgroups
    real = cgroups.pids

    def pids(path: str, skip: Collection[str] = ()) -> list[int]:
        listed.append(path)
        return real(path, skip)

    cgroups.pids = pids  # type: ignore[method-assign]
    sandboxes, containers = scene(version)
    app, side = (r.container(c, sandboxes[0]) for c in containers if c.id in (APP, SIDE))
    assert side.processes == Processes(count=1, threads=1, fds=3, sockets=0)  # its init's threads: all 1 task
    assert app.processes == Processes(count=2, threads=3, fds=10, sockets=3)  # 3 tasks, 2 of them its init's
    assert listed == [c.cgroup for c in containers if c.id == APP]


def test_a_stopped_pod_has_no_network_and_a_missing_pod_cgroup_falls_back_to_the_sum() -> None:
    sandboxes, containers = scene("v1")
    stopped = next(s for s in sandboxes if s.stopped_at)
    assert reader("v1").pod(stopped, []).pod.network is None
    web = sandboxes[0]
    gone = replace(web, config=replace(web.config, cgroup_parent="/kubepods/burstable/podgone"))
    pod = reader("v1").pod(gone, [c for c in containers if c.sandbox_id == WEB])
    assert pod.pod.labels.id == ""
    assert pod.pod.cgroup.cpu.usage_ns == 3_000_000_000 + 250_000_000  # app + sidecar


def test_the_root_cgroup_is_never_a_pod_cgroup() -> None:
    sandboxes, _ = scene("v1")
    cgroups = FakeCgroupManager()
    cgroups.create("/kubepods", Resources())
    r = StatsReader(cgroups, CgroupDriver.CGROUPFS, layer_usage=layer_usage)
    root = replace(sandboxes[1], config=replace(sandboxes[1].config, cgroup_parent="/"))
    assert r.pod_cgroup(root) is None
    assert r.pod_cgroup(replace(root, config=replace(root.config, cgroup_parent="/kubepods"))) == "/kubepods"
    assert r.pod_cgroup(replace(root, config=replace(root.config, cgroup_parent="not-absolute"))) is None


def test_spec_fills_kernel_defaults_and_zero_for_no_limit() -> None:
    assert spec(Resources()) == Spec(cpu_period=100_000, cpu_quota=0, cpu_shares=1024, memory_limit=0)
    assert spec(Resources(cpu_quota=-1, memory_limit_in_bytes=-1)) == Spec()
    assert spec(Resources(cpu_shares=2, memory_swap_limit_in_bytes=2048, memory_limit_in_bytes=1024)) == Spec(
        cpu_shares=2, memory_limit=1024, memory_swap_limit=2048)


def test_image_label_prefers_a_name() -> None:
    _, containers = scene("v1")
    worker = next(c for c in containers if c.id == WORKER)
    assert image_label(worker) == "registry.example/jobs/worker:7"
    by_id = replace(worker, config=replace(worker.config, image=BUSYBOX_ID), image_ref="repo@sha256:1")
    assert image_label(by_id) == "repo@sha256:1"
    bare = replace(by_id, config=replace(by_id.config, image="e" * 64))
    assert image_label(bare) == "repo@sha256:1"
