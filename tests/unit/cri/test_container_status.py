"""ContainerStatus fields beyond the state: the user init became, the stop signal, and the record
that keeps them."""
from __future__ import annotations

from dataclasses import replace

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.containers import container_status
from cri.convert_container import mount
from runtime.container.model import ContainerConfig
from runtime.container.record import Container
from runtime.container.users import InitialUser
from runtime.process.initspec import InitSpec
from runtime.store.codec import decode, encode

SPEC = InitSpec(id="c1", args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")
CREATED = Container("c1", "p1", ContainerConfig(name="app", attempt=0, image="busybox"), image_id="sha256:1",
                    image_ref="busybox", spec=SPEC, cgroup="/pycrid/c1", created_at=1)
RUNNING = replace(CREATED, started_at=2, pid=42, user=InitialUser(1000, 1000, (1000, 1234, 50000)),
                  stop_signal="SIGRTMIN+3")


def test_the_user_init_reported() -> None:
    assert container_status(RUNNING).user == pb.ContainerUser(
        linux=pb.LinuxContainerUser(uid=1000, gid=1000, supplemental_groups=[1000, 1234, 50000]))


def test_no_user_before_init_has_reported_one() -> None:
    assert not container_status(CREATED).HasField("user")


def test_root_is_a_user_too() -> None:
    status = container_status(replace(RUNNING, user=InitialUser(0, 0, (0,))))
    assert status.HasField("user") and status.user.linux.supplemental_groups == [0]


def test_the_user_survives_in_the_record() -> None:
    """What an agent restart reads back (runtime/store/records.py keeps records as this JSON)."""
    assert decode(Container, encode(RUNNING)) == RUNNING
    assert decode(Container, {k: v for k, v in encode(CREATED).items() if k != "user"}) == CREATED  # older record


@pytest.mark.parametrize("name, want", [
    ("SIGTERM", pb.SIGTERM), ("SIGUSR1", pb.SIGUSR1), ("SIGRTMIN+3", pb.SIGRTMINPLUS3),
    ("SIGRTMAX-2", pb.SIGRTMAXMINUS2), ("SIGCLD", pb.SIGCLD),
])
def test_the_stop_signal_it_was_created_with(name: str, want: int) -> None:
    assert container_status(replace(RUNNING, stop_signal=name)).stop_signal == want


def test_mounts_are_reported_as_they_were_asked_for() -> None:
    """As containerd reports them: the CRI's mounts, field for field (not the binds they became)."""
    asked = [
        pb.Mount(container_path="/data", host_path="/var/lib/kubelet/pods/u/volumes/d", selinux_relabel=True),
        pb.Mount(container_path="/tree", host_path="/srv/tree", readonly=True, recursive_read_only=True),
        pb.Mount(container_path="/in", host_path="/mnt/in", propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
        pb.Mount(container_path="/both", host_path="/mnt/both", propagation=pb.PROPAGATION_BIDIRECTIONAL),
        pb.Mount(container_path="/img", image=pb.ImageSpec(image="sha256:" + "a" * 64)),
        pb.Mount(container_path="/mapped", host_path="/var/lib/kubelet/pods/u/volumes/m",  # a userns pod's
                 uidMappings=[pb.IDMapping(host_id=100000, length=65536)],
                 gidMappings=[pb.IDMapping(host_id=200000, length=65536)]),
    ]
    config = replace(RUNNING.config, mounts=tuple(mount(m) for m in asked))
    assert list(container_status(replace(RUNNING, config=config)).mounts) == asked
