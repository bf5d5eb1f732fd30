from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import leaks, workloads
from tests.e2e.daemon import REPO, SESSION_BRIDGES, Daemon, crictl, start
from tests.e2e.registry import local_registry
from tests.e2e.workloads import Pods

TALLY_FILE = REPO / "_out" / "critest-tally.txt"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def e2e_prerequisites() -> Iterator[None]:
    """Root and the tools; afterwards, no bridge of this session's daemons may be left (each daemon
    removes its own)."""
    assert os.geteuid() == 0, "e2e tests need root: run them through hack/test.sh"
    for tool in ("crictl", "critest"):
        assert shutil.which(tool), f"{tool} is not on PATH: hack/install.sh puts it in $PYCRID_CACHE/bin"
    parents = default_cgroup_parents()
    yield
    left = {bridge: SESSION_BRIDGES[bridge] for bridge in test_bridges() & SESSION_BRIDGES.keys()}
    assert not left, f"e2e bridges left behind (bridge: the test whose daemon got it): {left}"
    for path in default_cgroup_parents() - parents:  # made by the suite's daemons, empty by now
        os.rmdir(path)


def default_cgroup_parents() -> set[str]:
    """pycrid's parent cgroup for containers of pods without a cgroup_parent, in each hierarchy
    (cgroupfs and systemd driver)."""
    root = Path("/sys/fs/cgroup")
    hierarchies = [root] if (root / "cgroup.controllers").exists() else list(root.glob("*"))  # v2 | v1
    return {str(h / name) for h in hierarchies for name in ("pycrid", "pycrid.slice") if (h / name).is_dir()}


def test_bridges() -> set[str]:
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout.split("\n")
    return {line.split()[0] for line in links if line.startswith(("pyce2e", "pycni"))}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local docker-registry holding the test images, for pycrid to mirror the public hosts to."""
    with local_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture(scope="session")
def pycrid(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[Daemon]:
    """One pycrid for the suite; afterwards every pod is removed and nothing may be left behind."""
    daemon = start(tmp_path_factory.mktemp("pycrid"), registry)
    yield daemon
    left, _ = leaks.remove_everything(daemon)
    assert left.empty(), f"pycrid left behind: {left}"


def pytest_configure(config: pytest.Config) -> None:
    TALLY_FILE.unlink(missing_ok=True)  # a tally is printed only by the run that made it


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    if TALLY_FILE.exists():
        terminalreporter.write_line(TALLY_FILE.read_text().strip())


@pytest.fixture(scope="module")
def busybox(pycrid: Daemon) -> None:
    """Pulled once per module that creates pods."""
    crictl(pycrid, "pull", workloads.BUSYBOX)


@pytest.fixture
def pods(pycrid: Daemon, tmp_path: Path, busybox: None) -> Iterator[Pods]:
    """Runs pods with crictl in the suite's pycrid; removes them after the test."""
    made = Pods(pycrid, tmp_path)
    try:
        yield made
    finally:
        made.remove_all()
