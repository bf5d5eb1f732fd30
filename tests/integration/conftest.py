from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import hostroot
from tests.integration.podharness import PodHarness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.root)


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    assert os.geteuid() == 0, "integration tests need root and the real kernel: run hack/test.sh as root"


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs of the host's own tools (hostroot.py), for container tests without images."""
    return hostroot.make(tmp_path_factory.mktemp("hostroot"))


@pytest.fixture
def pod(tmp_path: Path, lower: Path) -> Iterator[PodHarness]:
    """A fork server and one pod monitor for real; no zombie may be left when it ends."""
    harness = PodHarness(tmp_path, lower)
    try:
        yield harness
    finally:
        zombies = harness.close()  # before the assertion: a failing check must not leave it running
    assert zombies == ()
