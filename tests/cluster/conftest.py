"""One cluster for the package's tests (hack/cluster/up on a state dir of the session's own, so it
meets no other run's), a namespace per test module, and `down --purge` after the last test, after
which nothing of the cluster may be left on the machine."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from runtime.linux import proc
from tests.cluster.client import HACK, UP_TIMEOUT, Cluster
from tests.cluster.layout import Layout
from tests.e2e.daemon import REPO
from tests.kubelet import node_cgroups

LAST = "test_leftovers.py"
LOGS_KEPT = REPO / "_out" / "cluster-logs"  # deletes everything and checks the node is clean: runs after the others


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [i for i, item in enumerate(items) if "tests/cluster/" in str(item.fspath)]
    for i in ours:
        items[i].add_marker(pytest.mark.e2e)
    # The package's items are one run of the list: LAST's go to its end, not to the session's.
    if ours:
        block = items[ours[0]:ours[-1] + 1]
        block.sort(key=lambda item: item.fspath.basename == LAST)
        items[ours[0]:ours[-1] + 1] = block


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Package-scoped: torn down after the package's last test, not at the end of the session. When
    a test failed, the components' logs are kept in _out/cluster-logs first."""
    assert os.geteuid() == 0, "the cluster tests need root: run them through hack/test.sh"
    assert shutil.which("crictl"), "crictl is not on PATH: hack/install.sh puts it in $PYCRID_CACHE/bin"
    made = Cluster(Layout.at(tmp_path_factory.mktemp("cluster")))
    up = subprocess.run([str(HACK / "up")], env=made.env, capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, f"hack/cluster/up failed:\n{up.stderr[-6000:]}"
        yield made
    finally:
        if request.session.testsfailed:
            shutil.rmtree(LOGS_KEPT, ignore_errors=True)
            shutil.copytree(made.layout.path("logs"), LOGS_KEPT, dirs_exist_ok=True)
        down = subprocess.run([str(HACK / "down"), "--purge"], env=made.env, capture_output=True, text=True,
                              timeout=UP_TIMEOUT)
        assert down.returncode == 0, f"hack/cluster/down failed:\n{down.stderr[-6000:]}"
        assert machine_leftovers(made.layout) == [], "hack/cluster/down left these on the machine"


def machine_leftovers(layout: Layout) -> list[str]:
    """What of a cluster is on the machine: its namespace, cgroups, mounts, state dir, processes."""
    left = [str(p) for p in (layout.netns_path, layout.base) if p.exists()]
    left += list(node_cgroups.left_of(layout.cgroup_root))
    left += [m for m in proc.mount_points() if m.startswith(f"{layout.base}/")]
    for pid in proc.pids():
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(layout.base) in cmdline:
            left.append(f"process {pid}: {cmdline[:200]}")
    return left


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for the module's objects, deleted (with everything in it) afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    name = f"{module}-{secrets.token_hex(2)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    # Not waited for: the next module runs meanwhile, and test_leftovers waits for every pod to go.
    cluster.kubectl("delete", "namespace", name, "--wait=false")
