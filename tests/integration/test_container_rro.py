"""A recursive read-only bind of a host tree with a submount, seen from inside a real container:
read-only at both levels, where a plain read-only bind leaves the submount writable."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.process.initspec import BindMount
from tests.integration.podharness import log_lines, wait_exit

# Writes at the top of /mnt and in its submount, each reporting "ok" or the error sh printed.
PROBE = ("sh", "-c", "for f in /mnt/top /mnt/sub/below; do "
         "if echo x 2>/dev/null > $f; then echo $f ok; else echo $f refused; fi; done")


@pytest.fixture
def host_tree(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/tree with a tmpfs mounted at tree/sub on the host; unmounted again at the end."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tree / "sub")], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(tree / "sub")], check=True)


def _probe(pod, name: str, mount: BindMount) -> list[str]:  # type: ignore[no-untyped-def]
    spec = pod.spec(name, PROBE, mounts=(mount,))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    return [text for _, _, text in log_lines(spec)]


def test_recursive_readonly_covers_the_submount(pod, host_tree: Path) -> None:
    mount = BindMount(str(host_tree), "/mnt", readonly=True, recursive_readonly=True)
    assert _probe(pod, "rro", mount) == ["/mnt/top refused", "/mnt/sub/below refused"]
    # The host's own tree stays writable: only the container's copy of the mounts changed.
    (host_tree / "sub" / "host-file").write_text("x")


def test_plain_readonly_leaves_the_submount_writable(pod, host_tree: Path) -> None:
    mount = BindMount(str(host_tree), "/mnt", readonly=True)
    assert _probe(pod, "ro", mount) == ["/mnt/top refused", "/mnt/sub/below ok"]
    assert (host_tree / "sub" / "below").read_text() == "x\n"
