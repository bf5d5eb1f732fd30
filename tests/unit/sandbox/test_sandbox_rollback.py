"""A RunPodSandbox whose set-up fails undoes everything it did, the pod's monitor, the pause
process and its cgroup included; when the undo fails too, the sandbox stays recorded (unknown, its name reserved) for
Stop/Remove."""
from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.model import NamespaceMode
from runtime.errors import AlreadyExists, Internal
from runtime.events.testing import RecordedEvents
from runtime.linux.testing import FakeSyscalls
from runtime.locks import KeyedLocks
from runtime.network.testing import FakeNetworkPlugin
from runtime.process.testing import FakeMonitors, FakeWatches
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.model import SandboxConfig
from runtime.sandbox.processes import PodProcesses
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore
from runtime.store.testing import failing_syncs


class NoContainers:
    def stop_in_pod(self, sandbox_id: str) -> None: ...

    def remove_in_pod(self, sandbox_id: str) -> None: ...

    def fail_in_pod(self, sandbox_id: str, why: str) -> None: ...


class NoInfraImage:
    def get(self) -> None:
        return None


@pytest.fixture
def parts(tmp_path: Path):
    store: RecordStore[Sandbox] = RecordStore(tmp_path / "records", "sandbox", encode, lambda d: decode(Sandbox, d))
    monitors, network, cgroups = FakeMonitors(), FakeNetworkPlugin(), FakeCgroupManager()
    processes = PodProcesses(monitors, FakeWatches(), cgroups, NoInfraImage(),  # type: ignore[arg-type]
                             str(tmp_path / "run" / "sandboxes"))
    manager = SandboxManager(store, processes, network, FakeSyscalls(), str(tmp_path / "run"), NoContainers(),
                             KeyedLocks(), CgroupDriver.CGROUPFS, clock=lambda: 1, events=RecordedEvents(),
                             cgroups=cgroups)
    yield manager, store, monitors, network, cgroups
    monitors.kill_all()


CONFIG = SandboxConfig(name="web", uid="u1", namespace="prod", pid_mode=NamespaceMode.POD,
                       cgroup_parent="/kubepods/podu1")


def reaped(process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 5
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.poll() is not None


def test_a_failed_network_set_up_undoes_everything(parts, tmp_path: Path) -> None:
    manager, store, monitors, network, cgroups = parts
    network.setup_error = Internal("bridge refused")
    with pytest.raises(Internal, match="bridge refused"):
        manager.run(CONFIG)
    assert store.ids() == []
    assert cgroups.resources == {}, "the pause's cgroup outlived the failed RunPodSandbox"
    assert list((tmp_path / "run" / "sandboxes").iterdir()) == []
    (pause,) = monitors.pauses
    assert reaped(pause), "the pause process outlived the failed RunPodSandbox"
    (monitor,) = monitors.processes.values()
    assert reaped(monitor), "the pod's monitor outlived the failed RunPodSandbox"
    network.setup_error = None
    assert manager.get(manager.run(CONFIG)).ready  # the name was released


def test_a_failed_undo_leaves_the_sandbox_for_stop_and_remove(parts) -> None:
    manager, store, monitors, network, cgroups = parts
    network.setup_error = Internal("bridge refused")
    network.teardown_error = Internal("bridge gone too")
    with pytest.raises(Internal, match="bridge refused"):
        manager.run(CONFIG)
    (left,) = store.all()
    assert left.unknown and not left.ready
    # What the undo could not finish stays recorded: the network, and the processes it had.
    assert left.pause_pid == monitors.pauses[0].pid
    assert left.monitor_pid == monitors.processes[left.id].pid
    with pytest.raises(AlreadyExists):
        manager.run(CONFIG)
    network.teardown_error = None
    manager.remove(left.id)
    assert store.ids() == [] and reaped(monitors.pauses[0]) and cgroups.resources == {}


def test_the_pause_runs_in_a_cgroup_of_its_own_under_the_pod_cgroup(parts) -> None:
    manager, store, monitors, network, cgroups = parts
    sandbox = store.get(manager.run(CONFIG))
    assert sandbox.cgroup == f"/kubepods/podu1/{sandbox.id}"
    assert monitors.pause_specs[0]["cgroup"] == sandbox.cgroup and sandbox.cgroup in cgroups.resources
    manager.stop(sandbox.id)
    assert reaped(monitors.pauses[0]) and cgroups.resources == {}
    assert cgroups.signals == [], "the recorded pause is signalled by pid, without freezing its cgroup"
    manager.remove(sandbox.id)  # stopped already: nothing left to undo
    assert store.ids() == []


def test_a_pause_never_recorded_is_killed_through_its_cgroup(parts) -> None:
    manager, store, monitors, network, cgroups = parts
    monitors.pause_error = Internal("report lost")
    with pytest.raises(Internal, match="report lost"):
        manager.run(CONFIG)
    (path, signal_number), = cgroups.signals
    assert path.startswith("/kubepods/podu1/") and signal_number == 9
    assert store.ids() == [] and cgroups.resources == {}


def test_without_a_shared_pid_namespace_there_is_no_pause_and_no_cgroup(parts) -> None:
    manager, store, monitors, network, cgroups = parts
    sandbox = store.get(manager.run(replace(CONFIG, pid_mode=NamespaceMode.CONTAINER)))
    assert sandbox.cgroup == "" and monitors.pauses == [] and cgroups.resources == {}


def test_a_monitor_that_dies_before_reporting_fails_the_run_naming_the_pod(parts) -> None:
    """RunPodSandbox's request has a pod name, not yet an id: the error names the pod."""
    manager, store, monitors, network, cgroups = parts
    monitors.spawn_error = Internal("monitor 0123456789ab: process 10828 exited without a report")
    with pytest.raises(Internal, match=r"^pod prod/web \(sandbox [0-9a-f]{12}\): starting its monitor: .*"
                                       r"exited without a report"):
        manager.run(CONFIG)
    assert store.ids() == []


def test_a_lost_pause_report_names_the_pod(parts) -> None:
    manager, store, monitors, network, cgroups = parts
    monitors.pause_error = Internal("pause helper 77 exited without a report")
    with pytest.raises(Internal, match=r"^pod prod/web \(sandbox [0-9a-f]{12}\): starting its pause: pause helper"):
        manager.run(CONFIG)


def test_a_first_record_that_cannot_be_synced_fails_the_run_and_undoes_it(
        parts, tmp_path: Path) -> None:
    """The first record's fsyncs run beside the set-up; RunPodSandbox answers only once they ended."""
    manager, store, monitors, network, cgroups = parts
    with failing_syncs(), pytest.raises(Internal, match="Input/output error"):
        manager.run(CONFIG)
    assert store.ids() == [] and cgroups.resources == {}
    assert list((tmp_path / "run" / "sandboxes").iterdir()) == []
    (monitor,) = monitors.processes.values()
    assert reaped(monitors.pauses[0]) and reaped(monitor)
    assert manager.get(manager.run(CONFIG)).ready  # the name was released
