"""RunPodSandbox of a pod with a user namespace: what its monitor is to pin and its pause to be,
the status the CRI gets, and the refusal on a node that cannot id-map."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.sandboxes import sandbox_status
from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.model import IdMapping, NamespaceMode, UserNamespace
from runtime.errors import FailedPrecondition
from runtime.events.testing import RecordedEvents
from runtime.linux.idmap import IdmapSupport
from runtime.linux.testing import FakeSyscalls
from runtime.locks import KeyedLocks
from runtime.network.testing import FakeNetworkPlugin
from runtime.process.testing import FakeMonitors, FakeWatches
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.processes import PodProcesses
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore
from tests.unit.sandbox.test_sandbox_rollback import NoContainers, NoInfraImage

USERNS = UserNamespace(IdMapping(0, 100000, 65536), IdMapping(0, 200000, 65536))
CONFIG = SandboxConfig(name="web", uid="u1", namespace="prod", pid_mode=NamespaceMode.POD, userns=USERNS)


def manager(tmp_path: Path, idmap: IdmapSupport) -> tuple[SandboxManager, FakeMonitors, RecordStore[Sandbox]]:
    store: RecordStore[Sandbox] = RecordStore(tmp_path / "records", "sandbox", encode, lambda d: decode(Sandbox, d))
    monitors = FakeMonitors()
    cgroups = FakeCgroupManager()
    processes = PodProcesses(monitors, FakeWatches(), cgroups, NoInfraImage(),  # type: ignore[arg-type]
                             str(tmp_path / "run" / "sandboxes"))
    return (SandboxManager(store, processes, FakeNetworkPlugin(), FakeSyscalls(), str(tmp_path / "run"),
                           NoContainers(), KeyedLocks(), CgroupDriver.CGROUPFS, clock=lambda: 1,
                           events=RecordedEvents(), cgroups=cgroups, idmap=idmap),
            monitors, store)


def test_the_monitor_pins_the_pods_user_namespace_and_the_pause_is_its_65535(tmp_path: Path) -> None:
    sandboxes, monitors, store = manager(tmp_path, IdmapSupport())
    try:
        sandbox = store.get(sandboxes.run(CONFIG))
        run = str(tmp_path / "run" / "sandboxes" / sandbox.id)
        assert sandbox.paths.userns == f"{run}/userns"
        (pins,) = monitors.pins
        assert pins.pins == {"user": f"{run}/userns", "net": f"{run}/netns", "ipc": f"{run}/ipcns",
                             "uts": f"{run}/utsns"}
        assert (pins.uid_map, pins.gid_map) == ("0 100000 65536\n", "0 200000 65536\n")
        (pause,) = monitors.pause_specs
        assert pause["namespaces"]["user"] == f"{run}/userns" and pause["user"] == 65535
        assert decode(Sandbox, encode(sandbox)) == sandbox  # the record keeps it across restarts
    finally:
        monitors.kill_all()


def test_a_pod_without_one_pins_none(tmp_path: Path) -> None:
    sandboxes, monitors, store = manager(tmp_path, IdmapSupport())
    try:
        sandbox = store.get(sandboxes.run(replace(CONFIG, userns=None)))
        assert sandbox.paths.userns == "" and "user" not in monitors.pins[0].pins
        assert monitors.pins[0].uid_map == "" and "user" not in monitors.pause_specs[0]["namespaces"]
    finally:
        monitors.kill_all()


def test_refused_where_id_mapped_mounts_cannot_be_made(tmp_path: Path) -> None:
    sandboxes, monitors, store = manager(tmp_path, IdmapSupport("id-mapping /var/lib/pycrid: no"))
    with pytest.raises(FailedPrecondition, match="pod prod/web: a user namespace needs id-mapped mounts, which this "
                                                 "node cannot make: id-mapping /var/lib/pycrid: no"):
        sandboxes.run(CONFIG)
    assert store.ids() == [] and monitors.pins == []
    sandboxes.run(replace(CONFIG, userns=None))  # others still run
    monitors.kill_all()


def test_pod_status_says_its_user_namespace() -> None:
    paths = SandboxPaths(dir="/d", netns="", ipcns="", utsns="", pidns="", hosts="", resolv_conf="", hostname="",
                         shm="", userns="/d/userns")
    sandbox = Sandbox("p1", CONFIG, paths, created_at=1)
    options = sandbox_status(sandbox).linux.namespaces.options
    assert options.userns_options == pb.UserNamespace(
        mode=pb.POD, uids=[pb.IDMapping(container_id=0, host_id=100000, length=65536)],
        gids=[pb.IDMapping(container_id=0, host_id=200000, length=65536)])
    node = sandbox_status(replace(sandbox, config=replace(CONFIG, userns=None))).linux.namespaces.options
    assert not node.HasField("userns_options")  # the node's: as before user namespaces
