"""The sandbox manager publishes the sandbox's own lifecycle under its id (as containerd does):
created and started once it is ready (nothing for a set-up that fails), stopped when it is stopped
or fails, deleted while its record is still there to describe it."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.model import NamespaceMode
from runtime.errors import Internal
from runtime.events.model import EventKind
from runtime.linux.testing import FakeSyscalls
from runtime.locks import KeyedLocks
from runtime.network.testing import FakeNetworkPlugin
from runtime.process.testing import FakeMonitors, FakeWatches
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.model import SandboxConfig
from runtime.sandbox.processes import PodProcesses, monitor_key
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore

CREATED, STARTED, STOPPED, DELETED = EventKind.CREATED, EventKind.STARTED, EventKind.STOPPED, EventKind.DELETED
CONFIG = SandboxConfig(name="web", uid="u1", namespace="prod", pid_mode=NamespaceMode.POD,
                       cgroup_parent="/kubepods/podu1")


class Containers:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def stop_in_pod(self, sandbox_id: str) -> None: ...

    def remove_in_pod(self, sandbox_id: str) -> None: ...

    def fail_in_pod(self, sandbox_id: str, why: str) -> None:
        self.failed.append(sandbox_id)


class NoInfraImage:
    def get(self) -> None:
        return None


class Published:
    """Each event with whether the sandbox was still recorded and ready when it was published."""

    def __init__(self, store: RecordStore[Sandbox]) -> None:
        self.store = store
        self.seen: list[tuple[EventKind, str, str, bool | None]] = []

    def publish(self, kind: EventKind, subject_id: str, sandbox_id: str) -> None:
        record = self.store.find(sandbox_id)
        self.seen.append((kind, subject_id, sandbox_id, None if record is None else record.ready))


@pytest.fixture
def parts(tmp_path: Path):
    store: RecordStore[Sandbox] = RecordStore(tmp_path / "records", "sandbox", encode, lambda d: decode(Sandbox, d))
    monitors, network, containers = FakeMonitors(), FakeNetworkPlugin(), Containers()
    processes = PodProcesses(monitors, FakeWatches(), FakeCgroupManager(), NoInfraImage(),  # type: ignore[arg-type]
                             str(tmp_path / "run" / "sandboxes"))
    published = Published(store)
    manager = SandboxManager(store, processes, network, FakeSyscalls(), str(tmp_path / "run"), containers,
                             KeyedLocks(), CgroupDriver.CGROUPFS, clock=lambda: 1, events=published,
                             cgroups=FakeCgroupManager())
    yield manager, published, network, containers
    monitors.kill_all()


def test_a_pod_s_lifecycle_is_published_under_its_own_id(parts) -> None:
    manager, published, _, _ = parts
    pod = manager.run(CONFIG)
    manager.stop(pod)
    manager.stop(pod)  # stopped already: nothing new
    manager.remove(pod)
    assert published.seen == [(CREATED, pod, pod, True), (STARTED, pod, pod, True), (STOPPED, pod, pod, False),
                              (DELETED, pod, pod, False)]  # the record still there to describe the pod


def test_a_set_up_that_fails_publishes_nothing(parts) -> None:
    manager, published, network, _ = parts
    network.setup_error = Internal("bridge refused")
    with pytest.raises(Internal):
        manager.run(CONFIG)
    assert published.seen == []


def test_a_pod_whose_monitor_dies_is_published_stopped_after_its_containers_end(parts) -> None:
    manager, published, _, containers = parts
    pod = manager.run(CONFIG)
    published.seen.clear()
    manager.helper_died(monitor_key(pod))
    assert containers.failed == [pod]
    assert published.seen == [(STOPPED, pod, pod, False)]
    manager.helper_died(monitor_key(pod))  # a second death report changes nothing
    assert len(published.seen) == 1
