"""read_image_file on hostile rootfs contents. Each read runs in a child with a deadline, so a read
that would block (a FIFO) fails the test instead of hanging it."""
import os

import pytest

from runtime.errors import InvalidArgument
from runtime.linux import constants as k
from runtime.linux.imagefile import read_image_file
from runtime.linux.testing import FakeSyscalls, run_in_child

LIMIT = 1 << 20
PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"


def read(root, path, limit=LIMIT):
    return run_in_child(lambda: read_image_file(FakeSyscalls(), str(root), path, limit), timeout=5)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    return r


def test_a_regular_file_is_read(root):
    (root / "etc" / "passwd").write_bytes(PASSWD)
    assert read(root, "/etc/passwd") == PASSWD


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/group/x", "/no/such/dir/passwd"])
def test_a_missing_file_is_none(root, path):
    (root / "etc" / "group").write_bytes(b"")
    assert read(root, path) is None


def test_a_fifo_is_refused_at_once(root):
    os.mkfifo(root / "etc" / "passwd")  # a plain open() would wait for a writer forever
    with pytest.raises(InvalidArgument, match=r"/etc/passwd in the container is a FIFO, not a regular file"):
        read(root, "/etc/passwd")


def test_a_device_is_refused():
    # A tmp rootfs cannot hold a device node without root; the host's root has /dev/null.
    with pytest.raises(InvalidArgument, match=r"/dev/null in the container is a character device"):
        read("/", "/dev/null")


def test_a_directory_is_refused(root):
    (root / "etc" / "passwd").mkdir()
    with pytest.raises(InvalidArgument, match=r"/etc/passwd in the container is a directory"):
        read(root, "/etc/passwd")


def test_a_huge_sparse_file_is_refused_without_reading_it(root):
    with open(root / "etc" / "passwd", "wb") as f:
        f.truncate(1 << 40)  # a terabyte of holes
    with pytest.raises(InvalidArgument, match=rf"/etc/passwd in the container is {1 << 40} bytes, more than {LIMIT}"):
        read(root, "/etc/passwd")


def test_a_file_at_the_limit_is_read(root):
    (root / "etc" / "passwd").write_bytes(b"x" * 100)
    assert read(root, "/etc/passwd", limit=100) == b"x" * 100
    (root / "etc" / "passwd").write_bytes(b"x" * 101)
    with pytest.raises(InvalidArgument, match="101 bytes, more than 100"):
        read(root, "/etc/passwd", limit=100)


def test_a_file_whose_size_lies_is_read_only_up_to_the_limit():
    # /proc files say 0 bytes and have more: the read itself is bounded.
    with pytest.raises(InvalidArgument, match="grew past 16 bytes"):
        read("/", "/proc/self/maps", limit=16)


@pytest.mark.parametrize("link", ["HOST", "../../../../../../HOST", "/../../HOST"])
def test_a_symlink_out_of_the_root_resolves_inside_it(root, tmp_path, link):
    host = tmp_path / "host-passwd"
    host.write_bytes(b"hostonly:x:4242:4242::/:/bin/sh\n")
    inside = root / str(host).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"inside:x:1:1::/:/bin/sh\n")
    target = link.replace("HOST", str(host).lstrip("/")) if link != "HOST" else str(host)
    os.symlink(target, root / "etc" / "passwd")
    assert read(root, "/etc/passwd") == b"inside:x:1:1::/:/bin/sh\n"
    inside.unlink()
    assert read(root, "/etc/passwd") is None  # never the host's file


def test_a_symlink_within_the_root_is_followed(root):
    (root / "usr" / "share").mkdir(parents=True)
    (root / "usr" / "share" / "passwd").write_bytes(PASSWD)
    os.symlink("../usr/share/passwd", root / "etc" / "passwd")
    assert read(root, "/etc/passwd") == PASSWD


def test_a_symlink_loop_is_refused(root):
    os.symlink("group", root / "etc" / "passwd")
    os.symlink("passwd", root / "etc" / "group")
    with pytest.raises(InvalidArgument, match="/etc/passwd in the container cannot be read"):
        read(root, "/etc/passwd")


def test_a_proc_magic_link_is_refused():
    # /proc/self/root jumps to wherever that process's root is, past any RESOLVE_IN_ROOT.
    with pytest.raises(InvalidArgument, match="cannot be read"):
        read("/", "/proc/self/root/etc/hostname")


def test_the_open_cannot_block_follow_magic_links_or_leave_the_root(root):
    (root / "etc" / "passwd").write_bytes(PASSWD)
    fake = FakeSyscalls()
    assert read_image_file(fake, str(root), "/etc/passwd", LIMIT) == PASSWD
    ((_, path, flags, _, resolve),) = fake.calls_to("openat2")
    assert path == "/etc/passwd"
    wanted = os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    assert flags & wanted == wanted and flags & os.O_ACCMODE == os.O_RDONLY
    assert resolve == k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS
