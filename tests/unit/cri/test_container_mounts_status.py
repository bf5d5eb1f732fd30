"""ContainerStatus.mounts: each CRI mount as given; an image volume with the image as the kubelet
named it (its image GC matches that against image ids) and the reference it resolved to."""
from __future__ import annotations

from cri.api.v1 import api_pb2 as pb
from cri.containers import container_status
from runtime.container.model import ContainerConfig, Mount
from runtime.container.record import Container, MountedImage
from runtime.process.initspec import InitSpec

ID = "sha256:" + "c" * 64
REF = "docker.io/library/tools@sha256:" + "d" * 64
SPEC = InitSpec(id="c1", args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")


def test_an_image_volume_is_reported_as_given_with_its_resolved_ref() -> None:
    config = ContainerConfig(name="app", attempt=0, image="busybox", mounts=(
        Mount("/data", "/host/data", propagation="rslave"),
        Mount("/tools", "", readonly=True, image=ID, image_sub_path="bin"),
    ))
    c = Container("c1", "p1", config, image_id="sha256:1", image_ref="busybox", spec=SPEC, cgroup="/c1",
                  created_at=1, mounted_images=(MountedImage("/tools", ID, REF),))
    assert list(container_status(c).mounts) == [
        pb.Mount(container_path="/data", host_path="/host/data", propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
        pb.Mount(container_path="/tools", readonly=True, image=pb.ImageSpec(image=ID, image_ref=REF),
                 image_sub_path="bin"),
    ]
    assert not container_status(c).mounts[0].HasField("image")
