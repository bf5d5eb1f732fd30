"""Image volumes (CRI Mount.image): the sub path rules, what init is told to mount, and its place
among the container's other mounts."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from runtime.container.imagemounts import ImageMountSources, clean_sub_path, image_mount
from runtime.container.model import ContainerConfig, Mount
from runtime.container.record import Container, MountedImage
from runtime.container.spec import build_init_spec
from runtime.errors import InvalidArgument, NotFound
from runtime.image.config import ImageConfig
from runtime.linux.imagetree import ImageTree
from runtime.process.initspec import BindMount, InitSpec
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.store.codec import decode, encode

ID = "sha256:" + "a" * 64
LAYERS = ("/snap/3/fs", "/snap/2/fs")
EMPTY = "/run/pycrid/containers/c1/image-empty"
SOURCES = ImageMountSources(EMPTY, {ID: LAYERS, "tools:1": ("/snap/9/fs",)})


def mount(**kw) -> Mount:
    return Mount(**{"container_path": "/vol", "host_path": "", "readonly": True, "image": ID, **kw})


@pytest.mark.parametrize("given, want", [
    ("", ""), (".", ""), ("./", ""), ("etc", "etc"), ("etc/", "etc"), ("./etc//ssl/./certs/", "etc/ssl/certs"),
    ("a..b/..c", "a..b/..c"),  # '..' only as a whole component escapes
])
def test_sub_path_is_cleaned(given, want) -> None:
    assert clean_sub_path(given, "v") == want


@pytest.mark.parametrize("given, message", [
    ("/etc", "must be relative"),
    ("/", "must be relative"),
    ("..", "'..' is not allowed"),
    ("etc/../..", "'..' is not allowed"),
    ("etc/../etc", "'..' is not allowed"),  # even one that would stay inside
    ("a/b/../../../host", "'..' is not allowed"),
    ("etc\0x", "not a path"),
])
def test_sub_path_escapes_are_refused(given, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        clean_sub_path(given, "v")


def test_an_image_mount_is_the_image_tree_read_only_at_its_target() -> None:
    assert image_mount(mount(image_sub_path="./etc/"), "/vol", SOURCES) == BindMount(
        source="", target="/vol", readonly=True, image=ImageTree(LAYERS, EMPTY, "etc"))
    got = image_mount(mount(image="tools:1", recursive_read_only=True, propagation="rslave"), "/t", SOURCES)
    assert got == BindMount(source="", target="/t", readonly=True, recursive_readonly=True, propagation="rslave",
                            image=ImageTree(("/snap/9/fs",), EMPTY, ""))


@pytest.mark.parametrize("m, sources, error, message", [
    (mount(readonly=False), SOURCES, InvalidArgument, "read-only; readonly must be set"),
    (mount(host_path="/etc"), SOURCES, InvalidArgument, "host_path '/etc' must be empty"),
    (mount(image_sub_path="../.."), SOURCES, InvalidArgument, "'..' is not allowed"),
    (mount(image_sub_path="/etc"), SOURCES, InvalidArgument, "must be relative"),
    (mount(image="other:1"), SOURCES, NotFound, "'other:1' at /vol: the image was not resolved"),
    (mount(), ImageMountSources("", {ID: LAYERS}), NotFound, "not resolved"),
    (mount(), ImageMountSources(EMPTY, {ID: ()}), InvalidArgument, "has no layers"),
])
def test_image_mount_refusals(m, sources, error, message) -> None:
    with pytest.raises(error, match=message):
        image_mount(m, "/vol", sources)


PATHS = SandboxPaths(dir="/s", netns="/s/net", ipcns="/s/ipc", utsns="/s/uts", pidns="", hosts="/s/hosts",
                     resolv_conf="/s/resolv", hostname="/s/hostname", shm="/s/shm")
CONFIG = ContainerConfig(name="c", attempt=0, image="busybox", command=("sh",), mounts=(
    Mount("/data", "/host/data"),
    mount(container_path="/data/tools/", image_sub_path="bin"),
    Mount("/data/tools/cfg", "/host/cfg", readonly=True),
    mount(container_path="/etc/hosts", image="tools:1"),
))


def build(config: ContainerConfig, sources: ImageMountSources = SOURCES) -> InitSpec:
    return build_init_spec("c1", config, ImageConfig(), SandboxConfig(name="p", uid="u", namespace="n"), PATHS,
                           lowerdirs=("/l",), upperdir="/u", workdir="/w", rootfs="/r", volumes_dir="/v",
                           cgroup="/c", cgroup_v1_dirs=None, exit_file="/e", state_dir="/st", sandbox_log_dir="",
                           bounding=frozenset(), recursive_readonly_supported=True, image_mounts=sources)


def test_image_mounts_keep_their_place_among_the_cri_mounts() -> None:
    spec = build(CONFIG)
    assert spec.mounts == (
        BindMount("/s/resolv", "/etc/resolv.conf", is_file=True),  # /etc/hosts: the image volume's
        BindMount("/s/hostname", "/etc/hostname", is_file=True),
        BindMount("/host/data", "/data"),
        BindMount("", "/data/tools", readonly=True, image=ImageTree(LAYERS, EMPTY, "bin")),
        BindMount("/host/cfg", "/data/tools/cfg", readonly=True),
        BindMount("", "/etc/hosts", readonly=True, image=ImageTree(("/snap/9/fs",), EMPTY, "")),
    )
    assert InitSpec.from_dict(spec.to_dict()) == spec  # as the fork server's socket carries it


def test_spec_building_refuses_an_image_mount_the_manager_did_not_resolve() -> None:
    with pytest.raises(NotFound, match="'other:2' at /x: the image was not resolved"):
        build(replace(CONFIG, mounts=(mount(container_path="/x", image="other:2"),)))
    with pytest.raises(InvalidArgument, match="'/a/../b'"):
        build(replace(CONFIG, mounts=(mount(container_path="/a/../b"),)))


def test_a_container_uses_its_rootfs_image_and_its_image_volumes_images() -> None:
    spec = build(replace(CONFIG, mounts=()))
    c = Container("c1", "p1", CONFIG, image_id="sha256:" + "1" * 64, image_ref="busybox", spec=spec, cgroup="/c",
                  created_at=1, mounted_images=(MountedImage("/data/tools/", ID, ID),))
    assert c.uses_image("sha256:" + "1" * 64) and c.uses_image(ID)
    assert not c.uses_image("sha256:" + "2" * 64)
    assert not replace(c, mounted_images=()).uses_image(ID)


def test_a_container_with_image_volumes_survives_its_record() -> None:
    spec = build(CONFIG)
    c = Container("c1", "p1", CONFIG, image_id="sha256:" + "1" * 64, image_ref="busybox", spec=spec, cgroup="/c",
                  created_at=1, mounted_images=(MountedImage("/data/tools/", ID, ID),))
    assert decode(Container, json.loads(json.dumps(encode(c)))) == c
    old = {k: v for k, v in encode(c).items() if k != "mounted_images"}  # written before image volumes
    assert decode(Container, old).mounted_images == ()
