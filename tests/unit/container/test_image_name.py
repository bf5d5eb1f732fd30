"""How container statuses name the image: the kubelet creates containers by image id, and a status
must not show users that id (kubectl describe would)."""
from __future__ import annotations

from runtime.container.creator import image_name
from runtime.container.model import ContainerConfig
from runtime.image.config import ImageConfig
from runtime.image.store import Image

ID = "sha256:" + "ab" * 32
BUSYBOX = Image(id=ID, repo_tags=("docker.io/library/busybox:1",), repo_digests=(), size=1, uid=None,
                username="", pinned=False, config=ImageConfig(), chain_ids=(), blobs=())


def test_the_pod_specs_name_wins() -> None:
    config = ContainerConfig(name="c", attempt=0, image=ID, user_image="busybox:1")
    assert image_name(config, BUSYBOX) == "busybox:1"


def test_an_id_without_the_pod_specs_name_shows_a_tag() -> None:
    assert image_name(ContainerConfig(name="c", attempt=0, image=ID), BUSYBOX) == "docker.io/library/busybox:1"
    assert image_name(ContainerConfig(name="c", attempt=0, image=ID.removeprefix("sha256:")), BUSYBOX) == \
        "docker.io/library/busybox:1"


def test_a_reference_stays_as_asked() -> None:
    assert image_name(ContainerConfig(name="c", attempt=0, image="busybox:1"), BUSYBOX) == "busybox:1"
