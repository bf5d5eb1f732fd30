from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import leaks
from tests.e2e.conftest import e2e_prerequisites  # noqa: F401 - the session's root/tools/bridges check
from tests.e2e.daemon import Daemon
from tests.e2e.daemon import start as start_pycrid
from tests.e2e.registry import local_registry
from tests.kubelet import standalone
from tests.kubelet.standalone import StandaloneKubelet

IMAGES = ("library/busybox:1", "pause:3.10")  # the test pods' image and pycrid's sandbox image


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kubelet/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def pycrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A pycrid mirroring the public hosts to a registry of its own; afterwards every pod is removed
    and nothing may be left behind."""
    with local_registry(tmp_path_factory.mktemp("registry"), IMAGES) as registry:
        daemon = start_pycrid(tmp_path_factory.mktemp("pycrid"), registry)
        yield daemon
        left, _ = leaks.remove_everything(daemon)
        assert left.empty(), f"pycrid left behind: {left}"


@pytest.fixture
def kubelet(tmp_path: Path, pycrid: Daemon) -> Iterator[StandaloneKubelet]:
    """A standalone kubelet on the module's pycrid; stopped afterwards, and nothing it made may stay."""
    with running_kubelet(tmp_path / "kubelet", pycrid) as made:
        yield made


@pytest.fixture(scope="module")
def module_kubelet(tmp_path_factory: pytest.TempPathFactory, pycrid: Daemon) -> Iterator[StandaloneKubelet]:
    """The same, shared by a module's tests."""
    with running_kubelet(tmp_path_factory.mktemp("kubelet"), pycrid) as made:
        yield made


@contextlib.contextmanager
def running_kubelet(base: Path, pycrid: Daemon,
                    feature_gates: dict[str, bool] | None = None) -> Iterator[StandaloneKubelet]:
    made = standalone.start(base, pycrid, feature_gates=feature_gates)
    try:
        yield made
    finally:
        status = made.stop(pycrid)
        assert made.leftovers() == (), f"the kubelet left behind: {made.leftovers()}"
    assert status == 0, f"the kubelet exited with {status}; log:\n{made.log_tail()}"
