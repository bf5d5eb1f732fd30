"""CreateContainer prepares the start (the cgroup made, init set up and held by the pod's monitor);
StartContainer then only lets it go on. A create that cannot prepare still succeeds, and its start
does the whole set-up; removing a created container has its monitor drop what it holds."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.resources import Resources
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.manager import ContainerManager
from runtime.container.model import ContainerConfig
from runtime.container.record import Container, State
from runtime.errors import DeadlineExceeded, Internal
from runtime.events.testing import RecordedEvents
from runtime.image.manager import ImageManager
from runtime.locks import KeyedLocks
from runtime.process.initspec import InitSpec
from runtime.process.monitorclient import Started
from runtime.process.testing import FakeWatches
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore
from runtime.store.testing import failing_syncs
from tests.unit.container.test_manager_create import SANDBOX


class RecordingMonitor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.prepare_error: Exception | None = None

    def ping(self) -> dict[str, Any]:
        return {"containers": {}}

    def prepare(self, spec: InitSpec, timeout: float) -> int:
        self.calls.append(("prepare", spec.id))
        if self.prepare_error is not None:
            raise self.prepare_error
        return os.getpid()

    def start(self, spec: InitSpec, timeout: float) -> Started:
        self.calls.append(("start", spec.id))
        return Started(os.getpid(), 2, None)

    def discard(self, container_id: str) -> None:
        self.calls.append(("discard", container_id))


class CountingCgroups(FakeCgroupManager):
    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []

    def create(self, path: str, resources: Resources) -> None:
        super().create(path, resources)
        self.created.append(path)


def make(tmp_path: Path, images: ImageManager) -> tuple[ContainerManager, RecordingMonitor, CountingCgroups]:
    store: RecordStore[Container] = RecordStore(tmp_path / "containers", "container", encode,
                                                lambda d: decode(Container, d))
    sandboxes: RecordStore[Sandbox] = RecordStore(tmp_path / "sandboxes", "sandbox", encode,
                                                  lambda d: decode(Sandbox, d))
    sandboxes.add(SANDBOX.id, SANDBOX)
    monitor, cgroups = RecordingMonitor(), CountingCgroups()
    manager = ContainerManager(store, sandboxes, images, lambda s: monitor, cgroups,  # type: ignore[arg-type,return-value]
                               CgroupDriver("cgroupfs"), KeyedLocks(), str(tmp_path / "root"), str(tmp_path / "state"),
                               lambda: 1, lambda *_: None, RecordedEvents(), FakeWatches(),
                               recursive_readonly_supported=True)
    return manager, monitor, cgroups


def test_create_prepares_and_start_only_lets_it_go(tmp_path: Path, images: ImageManager) -> None:
    manager, monitor, cgroups = make(tmp_path, images)
    c = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1")))
    assert monitor.calls == [("prepare", c.id)]
    assert len(cgroups.created) == 1 and cgroups.exists(c.cgroup)
    manager.start(c.id)
    assert monitor.calls == [("prepare", c.id), ("start", c.id)]
    assert len(cgroups.created) == 1, "the start made the cgroup create had made"
    assert manager.get(c.id).state == State.RUNNING


@pytest.mark.parametrize("error", [DeadlineExceeded("preparing: not done by its deadline"), OSError("gone")])
def test_a_create_that_cannot_prepare_leaves_the_set_up_to_the_start(tmp_path: Path, images: ImageManager,
                                                                     error: Exception) -> None:
    manager, monitor, cgroups = make(tmp_path, images)
    monitor.prepare_error = error
    c = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1")))
    assert c.state == State.CREATED
    manager.start(c.id)
    assert monitor.calls == [("prepare", c.id), ("start", c.id)]
    assert len(cgroups.created) == 2, "the start did not make the cgroup again"
    assert manager.get(c.id).state == State.RUNNING


def test_removing_a_created_container_drops_its_prepared_init(tmp_path: Path, images: ImageManager) -> None:
    manager, monitor, cgroups = make(tmp_path, images)
    c = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1")))
    manager.remove(c.id)
    assert monitor.calls == [("prepare", c.id), ("discard", c.id)]
    assert not cgroups.exists(c.cgroup) and manager.find(c.id) is None


def test_a_create_whose_record_cannot_be_synced_fails_and_leaves_nothing(
        tmp_path: Path, images: ImageManager) -> None:
    """The record's fsyncs run beside the preparation; CreateContainer answers only once they
    ended, and when they fail it undoes the creation as a remove would."""
    manager, monitor, cgroups = make(tmp_path, images)
    with failing_syncs(), pytest.raises(Internal, match="Input/output error"):
        manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1"))
    assert manager.list() == [] and cgroups.resources == {}
    (prepared,) = [cid for call, cid in monitor.calls if call == "prepare"]
    assert monitor.calls == [("prepare", prepared), ("discard", prepared)]
    assert os.listdir(tmp_path / "root" / "containers") == [] and os.listdir(tmp_path / "state" / "containers") == []
    assert manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1")))  # name free
