"""What the container manager decides at create and keeps in the record: the image reference the
status reports, and the stop signal (the CRI's, else its image's STOPSIGNAL), which it fills in on
recovery for records written before it did so."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.manager import ContainerManager
from runtime.container.model import ContainerConfig, Mount
from runtime.container.record import Container
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.events.testing import RecordedEvents
from runtime.image.manager import ImageManager
from runtime.locks import KeyedLocks
from runtime.process.testing import FakeWatches
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore

D = "/run/pycrid/sandboxes/s1"
SANDBOX = Sandbox("5" * 64, SandboxConfig(name="pod", uid="u1", namespace="ns"),
                  SandboxPaths(dir=D, netns=f"{D}/netns", ipcns=f"{D}/ipcns", utsns=f"{D}/utsns", pidns="",
                               hosts="", resolv_conf="", hostname="", shm=""), created_at=1)


class NoMonitor:
    def ping(self) -> dict[str, object]:
        return {"containers": {}}


def make_manager(tmp_path: Path, images: ImageManager, rro: bool = True,
                 clock: Callable[[], int] = lambda: 1) -> tuple[ContainerManager, RecordStore[Container]]:
    store: RecordStore[Container] = RecordStore(tmp_path / "containers", "container", encode,
                                                lambda d: decode(Container, d))
    sandboxes: RecordStore[Sandbox] = RecordStore(tmp_path / "sandboxes", "sandbox", encode,
                                                  lambda d: decode(Sandbox, d))
    if not sandboxes.find(SANDBOX.id):
        sandboxes.add(SANDBOX.id, SANDBOX)
    manager = ContainerManager(store, sandboxes, images, lambda s: NoMonitor(), FakeCgroupManager(),  # type: ignore[arg-type]
                               CgroupDriver("cgroupfs"), KeyedLocks(), str(tmp_path / "root"), str(tmp_path / "state"),
                               clock, lambda *_: None, RecordedEvents(), FakeWatches(),
                               recursive_readonly_supported=rro)
    return manager, store


@pytest.mark.parametrize("image, cri, want", [
    ("trapper:1", "", "SIGUSR1"),  # the image's STOPSIGNAL, in canonical form
    ("trapper:1", "SIGQUIT", "SIGQUIT"),  # the CRI's wins
    ("plain:1", "", "SIGTERM"),
])
def test_create_decides_the_stop_signal(tmp_path: Path, images: ImageManager, image: str, cri: str,
                                        want: str) -> None:
    manager, _ = make_manager(tmp_path, images)
    config = ContainerConfig(name="c", attempt=0, image=image, stop_signal=cri)
    assert manager.get(manager.create(SANDBOX, config)).stop_signal == want


def test_an_image_stop_signal_naming_none_stops_with_sigterm_and_says_so(tmp_path: Path, images: ImageManager,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    manager, _ = make_manager(tmp_path, images)
    c = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="odd:1")))
    assert c.stop_signal == "SIGTERM"
    assert "STOPSIGNAL 'SIGFOO' names no signal" in caplog.text


def test_an_older_record_gets_its_stop_signal_on_recovery(tmp_path: Path, images: ImageManager) -> None:
    manager, store = make_manager(tmp_path, images)
    created = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="trapper:1")))
    store.update(created.id, lambda r: replace(r, stop_signal=""))  # as written before this field
    restarted, reloaded = make_manager(tmp_path, images)
    reloaded.load_all()
    restarted.recover()
    assert restarted.get(created.id).stop_signal == "SIGUSR1"


def test_the_image_ref_is_digest_pinned(tmp_path: Path, images: ImageManager) -> None:
    """The kubelet shows ContainerStatus.image_ref as the pod's imageID: the repository digest
    (containerd's repoDigests[0]), with the node-local image id beside it in image_id."""
    manager, _ = make_manager(tmp_path, images)
    image = images.status("trapper:1")
    assert image is not None and image.repo_digests
    c = manager.get(manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image=image.id)))
    assert (c.image_ref, c.image_id) == (image.repo_digests[0], image.id)
    assert c.image_ref.startswith("docker.io/library/trapper@sha256:")


RRO = Mount("/tree", "/srv/tree", readonly=True, recursive_read_only=True)


@pytest.mark.parametrize("mount, kernel_has_it, message", [
    (replace(RRO, readonly=False), True, "recursive_read_only needs readonly"),
    (replace(RRO, propagation="rslave"), True, "private propagation, not rslave"),
    (replace(RRO, propagation="rshared"), True, "private propagation, not rshared"),
    (RRO, False, "mount_setattr"),
])
def test_a_refused_recursive_readonly_mount_leaves_nothing(tmp_path: Path, images: ImageManager, mount: Mount,
                                                          kernel_has_it: bool, message: str) -> None:
    manager, store = make_manager(tmp_path, images, rro=kernel_has_it)
    config = ContainerConfig(name="web", attempt=0, image="plain:1", mounts=(mount,))
    with pytest.raises(InvalidArgument, match=f"^container 'web': mount at /tree: .*{message}"):
        manager.create(SANDBOX, config)
    assert store.ids() == [] and os.listdir(tmp_path / "root" / "containers") == []
    manager.create(SANDBOX, replace(config, mounts=()))  # the name was given back


def test_an_image_cannot_be_removed_while_a_container_of_it_is_being_created(tmp_path: Path,
                                                                            images: ImageManager) -> None:
    """The record naming the image is written at the end of create; a RemoveImage before that
    (here: when the record's creation time is read) is refused, not left to take the layers."""
    refused: list[Exception] = []

    def clock() -> int:
        try:
            images.remove("plain:1", in_use=manager.image_user)
        except FailedPrecondition as e:
            refused.append(e)
        return 1

    manager, store = make_manager(tmp_path, images, clock=clock)
    container_id = manager.create(SANDBOX, ContainerConfig(name="c", attempt=0, image="plain:1"))
    assert "being created" in str(refused[0])
    assert store.get(container_id).image_id == images.status("plain:1").id
    with pytest.raises(FailedPrecondition, match=f"in use by container {container_id}"):
        images.remove("plain:1", in_use=manager.image_user)
