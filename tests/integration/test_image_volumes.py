"""Image volumes for real: init mounts an image's layers, or a directory of them, read-only in the
container's own mount namespace (never on the host), and CreateContainer's check does the same in a
fork-server child that leaves nothing mounted."""
from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.linux import proc
from runtime.linux.imagetree import ImageTree
from runtime.process.imagecheck import ForkedImageMountCheck
from runtime.process.initspec import BindMount, InitSpec
from tests.integration.podharness import PodHarness, log_lines, wait_exit, wait_until


@pytest.fixture
def image(tmp_path: Path) -> ImageTree:
    """Two layers: the bottom one with a directory, a set-uid copy of the host's `id`, a device node
    and a file the top one whites out; the top one with a file and symlinks that try to leave."""
    bottom, top, empty = tmp_path / "snap1", tmp_path / "snap2", tmp_path / "image-empty"
    for d in (bottom / "share" / "doc", bottom / "etc", top, empty):
        d.mkdir(parents=True)
    (bottom / "share" / "doc" / "readme").write_text("from the bottom layer\n")
    (bottom / "etc" / "marker").write_text("the image's /etc\n")
    (bottom / "gone").write_text("whited out above\n")
    os.mknod(bottom / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (top / "top").write_text("from the top layer\n")
    os.mknod(top / "gone", stat.S_IFCHR, os.makedev(0, 0))  # an overlay whiteout, as unpack.py writes one
    os.symlink("/etc", top / "hostetc")
    os.symlink("../../../../../../..", top / "up")
    return ImageTree((str(top), str(bottom)), str(empty))


def volume(tree: ImageTree, target: str, sub_path: str = "") -> BindMount:
    return BindMount("", target, readonly=True, image=replace(tree, sub_path=sub_path))


def layer_mounts_anywhere(tree: ImageTree) -> list[str]:
    """Mount tables of every process on the host that show one of the image's layers."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            table = Path(f"/proc/{pid}/mountinfo").read_text()
        except OSError:
            continue
        if any(layer in table for layer in tree.layers):
            found.append(pid)
    return found


def mounts_under(path: Path) -> list[str]:
    """The host's mount points below ``path`` (other tests on the machine mount elsewhere meanwhile)."""
    return [m for m in proc.mount_points() if m.startswith(f"{path}/")]


def test_the_image_and_a_directory_of_it_read_only_in_the_container(pod: PodHarness, image: ImageTree,
                                                                    tmp_path: Path) -> None:
    script = ("cat /vol/top /vol/share/doc/readme /doc/readme /etc-of-image/marker; echo; ls /vol; echo; ls /up;"
              "echo; echo x 2>&1 > /vol/new; cat /vol/null 2>&1; grep -E ' /(vol|doc|etc-of-image|up) ' "
              "/proc/self/mountinfo; echo done; exec sleep 30")
    spec = pod.spec("c1", ("sh", "-c", script), mounts=(
        volume(image, "/vol"), volume(image, "/doc", "share/doc"), volume(image, "/etc-of-image", "hostetc"),
        volume(image, "/up", "up")))
    pid = pod.start(spec)
    try:
        lines = wait_for(spec, "done")
        assert mounts_under(tmp_path) == [], "an image volume reached the host's mount table"
        assert layer_mounts_anywhere(image) == [str(pid)]  # only the container's namespace has it
    finally:
        os.kill(pid, 9)
    wait_exit(spec)
    files, vol, up, rest = "\n".join(lines).split("\n\n", 3)
    assert files.splitlines() == ["from the top layer", "from the bottom layer", "from the bottom layer",
                                  "the image's /etc"]
    whole = {"top", "share", "etc", "null", "hostetc", "up"}  # "gone" is whited out
    assert set(vol.splitlines()) == whole and set(up.splitlines()) == whole  # ".." stops at the image's root
    assert "/vol/new: Read-only file system" in rest
    assert "/vol/null: Permission denied" in rest  # nodev: the image's device node is no device
    table = [line.split() for line in rest.splitlines() if " - " in line]
    mounts = {fields[4]: fields for fields in table}
    assert sorted(f[4] for f in table) == ["/doc", "/etc-of-image", "/up", "/vol"]  # one each, none underneath
    for where, root in (("/vol", "/"), ("/doc", "/share/doc"), ("/etc-of-image", "/etc"), ("/up", "/")):
        fields = mounts[where]
        assert fields[3] == root, fields  # the directory of the image, resolved inside it
        options = set(fields[5].split(","))
        assert {"ro", "nosuid", "nodev"} <= options and "noexec" not in options, fields
    assert layer_mounts_anywhere(image) == [], "the image volume outlived its container"


def wait_for(spec: InitSpec, marker: str, timeout: float = 10) -> list[str]:
    """The container's output lines once it printed ``marker``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(spec.log_path):
            lines = [t for _, _, t in log_lines(spec)]
            if marker in lines:
                return lines[:lines.index(marker)]
        time.sleep(0.02)
    raise AssertionError(f"the container never printed {marker!r}")


def test_a_sub_path_the_image_lacks_fails_the_start(pod: PodHarness, image: ImageTree) -> None:
    spec = pod.spec("c1", ("true",), mounts=(volume(image, "/vol", "share/nope"),))
    with pytest.raises(InvalidArgument, match="image volume at /vol: sub path 'share/nope': no such file"):
        pod.start(spec)


def test_the_create_check_mounts_in_a_child_and_leaves_nothing(pod: PodHarness, image: ImageTree,
                                                                tmp_path: Path) -> None:
    (tmp_path / "ctr" / "rootfs").mkdir(parents=True)
    check = ForkedImageMountCheck(pod.forkserver)
    check(replace(image, sub_path="share/doc"), str(tmp_path / "ctr"), "rootfs", "container 'c'", "image volume")
    check(replace(image, sub_path="hostetc"), str(tmp_path / "ctr"), "rootfs", "container 'c'", "image volume")
    for sub_path, message in (("share/nope", "'share/nope': no such file or directory in the image"),
                              ("top", "'top' is not a directory in the image"),
                              ("gone", "'gone': no such file")):  # whited out
        with pytest.raises(InvalidArgument, match=f"^container 'c': image volume at /v: sub path {message}"):
            check(replace(image, sub_path=sub_path), str(tmp_path / "ctr"), "rootfs", "container 'c'",
                  "image volume at /v")
    assert mounts_under(tmp_path) == []
    # A check child reports before it exits, and its mount namespace goes only with it: allow
    # that exit; a mount that leaked would stay.
    assert wait_until(lambda: layer_mounts_anywhere(image) == []), layer_mounts_anywhere(image)
    assert os.listdir(tmp_path / "ctr" / "rootfs") == []
