"""A container with an rshared volume keeps its mount namespace's "/" a peer of the host's (so the
volume's mounts flow both ways); its rootfs must still never show up on the host. On hosts whose
"/" is shared (any systemd host) the rootfs' own bind would otherwise propagate out and stay."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.linux.proc import mount_points
from runtime.process.initspec import BindMount
from tests.integration.podharness import PodHarness, wait_exit


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/shared as a shared mount of its own, as the directories under a systemd host's "/" are."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
    subprocess.run(["mount", "--make-shared", str(shared)], check=True)
    try:
        yield shared
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=True)


def _under(path: Path) -> list[str]:
    return [m for m in mount_points() if m == str(path) or m.startswith(f"{path}/")]


def test_an_rshared_volume_does_not_put_the_rootfs_on_the_host(pod: PodHarness, shared_dir: Path,
                                                                 tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    base = shared_dir / "c1"
    for d in ("upper", "work", "rootfs"):
        (base / d).mkdir(parents=True)
    spec = pod.spec("c1", ("sleep", "600"), upperdir=str(base / "upper"), workdir=str(base / "work"),
                    rootfs=str(base / "rootfs"), mounts=(BindMount(str(volume), "/vol", propagation="rshared"),))
    pid = pod.start(spec)
    try:
        assert _under(base) == [], "the container's mounts showed up on the host"
    finally:
        subprocess.run(["kill", "-9", str(pid)], check=True)
        wait_exit(spec)
