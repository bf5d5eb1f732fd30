"""A RunPodSandbox whose set-up fails undoes everything it did, the pause process and its cgroup
included; when the undo fails too, the sandbox stays recorded (unknown, its name reserved) for
Stop/Remove."""
from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.model import NamespaceMode
from runtime.errors import AlreadyExists, Internal
from runtime.linux.proc import start_time
from runtime.linux.testing import FakeSyscalls
from runtime.network.testing import FakeNetworkPlugin
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.model import SandboxConfig
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore


class FakeForkServer:
    """Pins nothing; the "pause" is a real process, so that the test sees it killed. With
    ``report_error`` set, the pause starts but its report is lost."""

    def __init__(self) -> None:
        self.pauses: list[subprocess.Popen] = []
        self.specs: list[dict[str, Any]] = []
        self.report_error: Exception | None = None

    def spawn(self, kind: str, spec: dict[str, Any], timeout: float = 60.0) -> tuple[int, dict]:
        if kind != "pause":
            return 1, {}
        self.specs.append(spec)
        process = subprocess.Popen(["sleep", "30"])
        self.pauses.append(process)
        if self.report_error is not None:
            raise self.report_error
        return process.pid, {"pid": process.pid, "start_time": start_time(process.pid)}


class NoContainers:
    def stop_in_pod(self, sandbox_id: str) -> None: ...

    def remove_in_pod(self, sandbox_id: str) -> None: ...


class NoInfraImage:
    def get(self) -> None:
        return None


@pytest.fixture
def parts(tmp_path: Path):
    store: RecordStore[Sandbox] = RecordStore(tmp_path / "records", "sandbox", encode, lambda d: decode(Sandbox, d))
    forkserver, network, cgroups = FakeForkServer(), FakeNetworkPlugin(), FakeCgroupManager()
    manager = SandboxManager(store, forkserver, network, FakeSyscalls(), str(tmp_path / "run"), NoContainers(),
                             NoInfraImage(), cgroups, CgroupDriver.CGROUPFS, clock=lambda: 1)
    yield manager, store, forkserver, network, cgroups
    for process in forkserver.pauses:
        process.kill()
        process.wait()


CONFIG = SandboxConfig(name="web", uid="u1", namespace="prod", pid_mode=NamespaceMode.POD,
                       cgroup_parent="/kubepods/podu1")


def reaped(process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 5
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.poll() is not None


def test_a_failed_network_set_up_undoes_everything(parts, tmp_path: Path) -> None:
    manager, store, forkserver, network, cgroups = parts
    network.setup_error = Internal("bridge refused")
    with pytest.raises(Internal, match="bridge refused"):
        manager.run(CONFIG)
    assert store.ids() == []
    assert cgroups.resources == {}, "the pause's cgroup outlived the failed RunPodSandbox"
    assert list((tmp_path / "run" / "sandboxes").iterdir()) == []
    (pause,) = forkserver.pauses
    assert reaped(pause), "the pause process outlived the failed RunPodSandbox"
    network.setup_error = None
    assert manager.get(manager.run(CONFIG)).ready  # the name was released


def test_a_failed_undo_leaves_the_sandbox_for_stop_and_remove(parts) -> None:
    manager, store, forkserver, network, cgroups = parts
    network.setup_error = Internal("bridge refused")
    network.teardown_error = Internal("bridge gone too")
    with pytest.raises(Internal, match="bridge refused"):
        manager.run(CONFIG)
    (left,) = store.all()
    assert left.unknown and not left.ready
    # What the undo could not finish stays recorded: the network, the pause's cgroup.
    assert left.pause_pid == forkserver.pauses[0].pid and left.cgroup in cgroups.resources
    with pytest.raises(AlreadyExists):
        manager.run(CONFIG)
    network.teardown_error = None
    manager.remove(left.id)
    assert store.ids() == [] and reaped(forkserver.pauses[0]) and cgroups.resources == {}


def test_the_pause_runs_in_a_cgroup_of_its_own_under_the_pod_cgroup(parts) -> None:
    manager, store, forkserver, network, cgroups = parts
    sandbox = store.get(manager.run(CONFIG))
    assert sandbox.cgroup == f"/kubepods/podu1/{sandbox.id}"
    assert forkserver.specs[0]["cgroup"] == sandbox.cgroup and sandbox.cgroup in cgroups.resources
    manager.stop(sandbox.id)
    assert reaped(forkserver.pauses[0]) and cgroups.resources == {}
    assert cgroups.signals == [], "the recorded pause is signalled by pid, without freezing its cgroup"
    manager.remove(sandbox.id)  # stopped already: nothing left to undo
    assert store.ids() == []


def test_a_pause_never_recorded_is_killed_through_its_cgroup(parts) -> None:
    manager, store, forkserver, network, cgroups = parts
    forkserver.report_error = Internal("report lost")
    with pytest.raises(Internal, match="report lost"):
        manager.run(CONFIG)
    (path, signal_number), = cgroups.signals
    assert path.startswith("/kubepods/podu1/") and signal_number == 9
    assert store.ids() == [] and cgroups.resources == {}


def test_without_a_shared_pid_namespace_there_is_no_pause_and_no_cgroup(parts) -> None:
    manager, store, forkserver, network, cgroups = parts
    sandbox = store.get(manager.run(replace(CONFIG, pid_mode=NamespaceMode.CONTAINER)))
    assert sandbox.cgroup == "" and forkserver.pauses == [] and cgroups.resources == {}
