"""ContainerStatus fields beyond the state: the user init became, the stop signal, and the record
that keeps them."""
from __future__ import annotations

from dataclasses import replace

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.containers import container_status
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
