"""Containers on a cgroup v2 node (hack/vm's guest): device access control by the device program,
and the container's own cgroup namespace with its cgroup at /sys/fs/cgroup, read-only."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroups.devices import DEFAULT_RULES
from runtime.cgroups.manager import detect
from runtime.cgroups.resources import Resources
from runtime.cgroups.v2 import V2Manager
from tests.integration import hostroot
from tests.integration.podharness import PodHarness, log_lines, wait_exit

ROOT = "/sys/fs/cgroup"
MiB = 1 << 20


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostroot.make(tmp_path_factory.mktemp("hostroot"))


@pytest.fixture
def pod(tmp_path: Path, lower: Path) -> Iterator[tuple[PodHarness, V2Manager, str]]:
    if detect(ROOT) != "v2":
        pytest.skip("this node does not run cgroup v2 (hack/vm/ boots a guest that does)")
    cgroups = V2Manager(ROOT)
    base = f"/pycrid-test-{secrets.token_hex(4)}"
    harness = PodHarness(tmp_path, lower)
    try:
        yield harness, cgroups, base
    finally:
        zombies = harness.close()
        cgroups.kill_all(base)
        cgroups.remove(base)
    assert zombies == ()
    assert not os.path.exists(os.path.join(ROOT, base.lstrip("/")))


def output(harness: PodHarness, cgroups: V2Manager, path: str, args: tuple[str, ...], **changes: object) -> list[str]:
    spec = harness.spec(path.rsplit("/", 1)[-1], args, cgroup=path, cgroup_namespace=True, **changes)
    harness.start(spec)
    wait_exit(spec)
    return [line[-1] for line in log_lines(spec)]


# A block device no rule allows that root opens without any capability (an unbound loop device).
LOOP = (7, 0)


def test_an_unprivileged_container_cannot_open_a_device_node_it_made_a_privileged_one_can(pod) -> None:
    harness, cgroups, base = pod
    major, minor = LOOP
    script = f"mknod /tmp/loop b {major} {minor} && head -c 1 /tmp/loop >/dev/null; echo rc=$?"
    confined, privileged = f"{base}/confined", f"{base}/privileged"
    cgroups.create(confined, Resources())
    cgroups.restrict_devices(confined, DEFAULT_RULES)  # what the container manager does unless privileged
    cgroups.create(privileged, Resources())
    lines = output(harness, cgroups, confined, ("sh", "-c", script), capabilities=("CAP_MKNOD",))
    assert lines[-1] == "rc=1" and "Operation not permitted" in " ".join(lines), lines
    lines = output(harness, cgroups, privileged, ("sh", "-c", script), capabilities=("CAP_MKNOD",),
                   privileged=True)
    assert lines == ["rc=0"]


def test_a_container_sees_its_own_cgroup_read_only_at_sys_fs_cgroup(pod) -> None:
    harness, cgroups, base = pod
    path = f"{base}/c1"
    cgroups.create(path, Resources(memory_limit_in_bytes=64 * MiB, pids_limit=40))
    script = ("cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; "
              "echo 1 >/sys/fs/cgroup/pids.max; echo rc=$?")
    lines = output(harness, cgroups, path, ("sh", "-c", script))
    assert lines[:3] == ["0::/", str(64 * MiB), "40"]
    # The shell's redirection fails (status 2) before echo runs; its message may come first or last.
    assert "rc=2" in lines and "Read-only file system" in " ".join(lines), lines
    with open(os.path.join(ROOT, path.lstrip("/"), "pids.max")) as f:
        assert f.read().strip() == "40"
