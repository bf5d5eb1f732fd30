"""The kubelet's mount namespace (confinement.py) changes nothing in the machine's: the pinned
namespaces it drops from its copy stay pinned for everyone else, even where their mount point is
a shared mount (as `ip netns add` makes /run/netns), whose unmounts would otherwise propagate."""
from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.linux import proc
from tests.kubelet.confinement import confined_command


@pytest.fixture
def named_netns() -> Iterator[Path]:
    name = f"pycrid-conf-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield Path("/run/netns") / name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_a_named_network_namespace_stays_pinned(tmp_path: Path, named_netns: Path) -> None:
    inside = subprocess.run(confined_command(["cat", "/proc/self/mountinfo"], tmp_path),
                            capture_output=True, text=True, check=True)
    assert f" {named_netns} " not in inside.stdout  # dropped from the kubelet's copy ...
    assert str(named_netns) in proc.mount_points()       # ... and only there
    subprocess.run(["ip", "netns", "exec", named_netns.name, "true"], check=True)
