"""ImageManager as root against a real docker-registry (hack/registry.sh) holding the conformance
images (hack/images.sh): pull through a mirror and directly, token auth, real ownership, device
nodes and overlay whiteouts, and an overlay mount of the lowerdirs that runs the image's busybox."""
from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import Unauthenticated
from runtime.image import Credentials, ImageManager, RegistryHost
from runtime.image import testimages as ti
from runtime.image.testing import FakeRegistry
from tests.ports import free_port

pytestmark = pytest.mark.root

HACK = Path(__file__).resolve().parents[2] / "hack"
BUSYBOX_REFS = ("library/busybox:1", "e2e-test-images/busybox:1.29-2")
USER_REFS = {"k8s-staging-cri-tools/test-image-user-uid:latest": (1002, ""),
             "k8s-staging-cri-tools/test-image-user-username:latest": (None, "www-data"),
             "k8s-staging-cri-tools/test-image-user-uid-group:latest": (1003, "")}


def run(*args: str | Path, timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def images_built() -> None:
    run(HACK / "images.sh", "build", timeout=1200)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, images_built) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("registry")
    host = f"127.0.0.1:{free_port()}"
    run(HACK / "registry.sh", "start", directory, host.split(":")[1])
    try:
        run(HACK / "images.sh", "push", host, *BUSYBOX_REFS, *USER_REFS)
        yield host
    finally:
        run(HACK / "registry.sh", "stop", directory)


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, images_built) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("token-registry")
    host = f"127.0.0.1:{free_port()}"
    run(HACK / "registry.sh", "start-token", directory, host.split(":")[1])
    try:
        run(HACK / "images.sh", "push", "--creds", "pycrid:secret", host, BUSYBOX_REFS[0])
        yield host
    finally:
        run(HACK / "registry.sh", "stop", directory)


@pytest.fixture
def overlay(tmp_path) -> Iterator[Path]:
    """A merged dir; the test mounts onto it and this fixture unmounts whatever is left."""
    merged = tmp_path / "merged"
    for d in ("merged", "upper", "work"):
        (tmp_path / d).mkdir()
    yield merged
    subprocess.run(["umount", "-l", str(merged)], capture_output=True)


def mount_overlay(lowerdirs: list[str], merged: Path) -> None:
    base = merged.parent
    run("mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={':'.join(lowerdirs)},upperdir={base}/upper,workdir={base}/work", merged)


def test_pull_through_a_docker_io_mirror_and_run_busybox(tmp_path, registry, overlay) -> None:
    manager = ImageManager(str(tmp_path / "root"), {"docker.io": RegistryHost(mirrors=(f"http://{registry}",))})
    image = manager.pull("busybox:1")
    assert image.repo_tags == ("docker.io/library/busybox:1",)
    assert image.repo_digests[0].startswith("docker.io/library/busybox@sha256:")
    lowerdirs = manager.lowerdirs("busybox:1")
    mount_overlay(lowerdirs, overlay)
    sh = overlay / "bin" / "sh"
    assert sh.exists() or sh.is_symlink()
    assert os.lstat(overlay / "bin").st_uid == 0
    out = run("chroot", overlay, "/bin/sh", "-c", "echo hello from $(busybox | head -n1 | cut -d' ' -f1)")
    assert out.startswith("hello from BusyBox")
    usage = manager.fs_info()
    assert usage.used_bytes > 0 and usage.inodes_used > 0


def test_pull_directly_from_an_insecure_registry_and_image_users(tmp_path, registry) -> None:
    manager = ImageManager(str(tmp_path / "root"), {registry: RegistryHost(insecure=True)})
    busybox = manager.pull(f"{registry}/{BUSYBOX_REFS[1]}")
    assert manager.pull(f"{registry}/{BUSYBOX_REFS[0]}").id == busybox.id  # one image, two names
    assert len(manager.status(busybox.id).repo_tags) == 2
    for ref, (uid, username) in USER_REFS.items():
        image = manager.pull(f"{registry}/{ref}")
        assert (image.uid, image.username) == (uid, username), ref
    manager.remove(busybox.id)
    assert manager.status(f"{registry}/{BUSYBOX_REFS[0]}") is None


def test_bearer_token_auth_against_a_real_registry(tmp_path, token_registry) -> None:
    manager = ImageManager(str(tmp_path / "root"), {token_registry: RegistryHost(insecure=True)})
    ref = f"{token_registry}/{BUSYBOX_REFS[0]}"
    with pytest.raises(Unauthenticated):
        manager.pull(ref)
    assert manager.pull(ref, Credentials(username="pycrid", password="secret")).repo_tags == (ref,)


def test_import_an_oci_archive(tmp_path, images_built) -> None:
    layout = Path(os.environ.get("PYCRID_CACHE", "/var/cache/pycrid-dev")) / "images" / "oci"
    archive = tmp_path / "busybox.tar"
    run("skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:busybox",
        f"oci-archive:{archive}:docker.io/library/busybox:imported")
    manager = ImageManager(str(tmp_path / "root"))
    (image,) = manager.import_archive(str(archive))
    assert image.repo_tags == ("docker.io/library/busybox:imported",)
    assert os.path.exists(manager.lowerdirs(image.id)[-1] + "/bin")


def test_real_owners_devices_and_whiteouts_under_overlay(tmp_path, overlay) -> None:
    """The overlay kernel driver, not our fake, judges our whiteouts and opaque directories."""
    lower = ti.layer_tar([ti.directory("etc"), ti.file("etc/gone", b"x"), ti.file("etc/kept", b"k"),
                          ti.directory("cache"), ti.file("cache/old", b"o")])
    upper = ti.layer_tar([ti.file("etc/.wh.gone"), ti.directory("cache"), ti.file("cache/.wh..wh..opq"),
                          ti.file("cache/new", b"n"), ti.file("owned", b"", mode=0o4750, uid=1234, gid=5678),
                          ti.device("dev/null", tarfile.CHRTYPE, 1, 3)])
    fake = FakeRegistry()
    fake.push("registry-1.docker.io", "library/wh", ti.build_image([lower, upper]), "latest")
    manager = ImageManager(str(tmp_path / "root"), transport=fake)
    manager.pull("wh")
    top, _ = manager.lowerdirs("wh")
    st = os.lstat(f"{top}/owned")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
    assert os.lstat(f"{top}/dev/null").st_rdev == os.makedev(1, 3)
    mount_overlay(manager.lowerdirs("wh"), overlay)
    assert sorted(os.listdir(overlay / "etc")) == ["kept"]
    assert sorted(os.listdir(overlay / "cache")) == ["new"]
