"""cgroup_driver = "systemd": containers go into `cri-pycrid-<id>.scope` under the pod's slice, or
under pycrid.slice for a pod without a cgroup_parent (there is no systemd here: only the naming is
systemd's). Checked on the hierarchy the node runs, v1 or v2 (tests/e2e/cgroupfiles.py)."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import leaks
from tests.e2e.cgroupfiles import cgroup_dir, in_every_hierarchy, process_cgroup
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import BUSYBOX, POD_NS, Pods, container_config, container_pid, pod_config, unique

CONTROLLERS = ("memory", "cpu", "pids", "freezer")


@pytest.fixture(scope="module")
def systemd_pycrid(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[Daemon]:
    daemon = start(tmp_path_factory.mktemp("pycrid-systemd"), registry, settings={"cgroup_driver": "systemd"})
    try:
        crictl(daemon, "pull", BUSYBOX)
        yield daemon
    finally:
        left, _ = leaks.remove_everything(daemon)
        assert left.empty(), f"pycrid left behind: {left}"


@pytest.fixture
def systemd_pods(systemd_pycrid: Daemon, tmp_path: Path) -> Iterator[Pods]:
    made = Pods(systemd_pycrid, tmp_path)
    try:
        yield made
    finally:
        made.remove_all()


def test_a_pod_without_a_cgroup_parent_runs_under_pycrid_slice(systemd_pycrid: Daemon,
                                                                systemd_pods: Pods) -> None:
    pod_id, pod_path = systemd_pods.run(pod_config(unique("sd-default"), systemd_pods.log_dir))
    cid = systemd_pods.create(pod_id, pod_path, container_config("sleeper", ["sleep", "60"]))
    pid = container_pid(systemd_pycrid, cid)
    for controller in CONTROLLERS:
        assert process_cgroup(pid, controller) == cgroup_dir(f"pycrid.slice/cri-pycrid-{cid}.scope",
                                                             controller), controller


def test_a_pod_slice_is_expanded_into_its_ancestors(systemd_pycrid: Daemon, systemd_pods: Pods) -> None:
    top = f"pycrid_e2e{secrets.token_hex(3)}"
    parent = f"{top}-pod1.slice"
    try:
        config = pod_config(unique("sd-slice"), systemd_pods.log_dir)
        config["linux"]["cgroup_parent"] = parent
        pod_id, pod_path = systemd_pods.run(config)
        cid = systemd_pods.create(pod_id, pod_path, container_config("sleeper", ["sleep", "60"]))
        pid = container_pid(systemd_pycrid, cid)
        for controller in CONTROLLERS:
            assert process_cgroup(pid, controller) == cgroup_dir(
                f"{top}.slice/{parent}/cri-pycrid-{cid}.scope", controller), controller
        crictl(systemd_pycrid, "rmp", "-f", pod_id)
        for controller in CONTROLLERS:
            assert not cgroup_dir(f"{top}.slice/{parent}/cri-pycrid-{cid}.scope", controller).exists(), controller
    finally:
        # The slices stand for the kubelet's pod cgroups, which the kubelet removes.
        for d in (*in_every_hierarchy(f"{top}.slice/{parent}"), *in_every_hierarchy(f"{top}.slice")):
            if d.is_dir():
                d.rmdir()


def test_a_pause_process_gets_a_scope_of_its_own_in_the_pod_slice(systemd_pycrid: Daemon,
                                                                  systemd_pods: Pods) -> None:
    pod_id, _ = systemd_pods.run(pod_config(unique("sd-pause"), systemd_pods.log_dir, pid=POD_NS))
    for controller in CONTROLLERS:
        scope = cgroup_dir(f"pycrid.slice/cri-pycrid-{pod_id}.scope", controller)
        assert len((scope / "cgroup.procs").read_text().split()) == 1, controller
    crictl(systemd_pycrid, "stopp", pod_id)
    assert not cgroup_dir(f"pycrid.slice/cri-pycrid-{pod_id}.scope", "memory").exists()
