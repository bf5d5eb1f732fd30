import errno
import os

import pytest

from runtime.errors import InvalidArgument
from runtime.linux import constants as k
from runtime.linux.rootfs import fd_path, make_in_root, open_in_root
from runtime.linux.testing import FakeSyscalls


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "rootfs"
    for d in ("etc", "usr/lib", "data", "var"):
        (r / d).mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return r


@pytest.fixture
def root_fd(root):
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def link(root, path, target):
    os.symlink(target, root / path)


def where(fd):
    try:
        return os.readlink(fd_path(fd))
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "links, path, expected",
    [
        ({}, "/etc/passwd", "etc/passwd"),
        ({}, "etc//./passwd", "etc/passwd"),
        ({}, "/../../../etc/passwd", "etc/passwd"),  # .. clamps at the root
        ({}, "/usr/lib/../../../../etc", "etc"),
        ({}, "/not/there/yet", "not/there/yet"),  # created
        ({"etc/shadow": "/etc/passwd"}, "/etc/shadow", "etc/passwd"),  # absolute: re-rooted
        ({"lib": "usr/lib"}, "/lib/x.so", "usr/lib/x.so"),  # relative
        ({"data/escape": "../../../../../../etc"}, "/data/escape/passwd", "etc/passwd"),
        ({"data/host": "/"}, "/data/host/etc/passwd", "etc/passwd"),
        ({"proc": "/../../../../"}, "/proc/etc/passwd", "etc/passwd"),
        ({"var/run": "/run", "run": "../../tmp/x"}, "/var/run/secret", "tmp/x/secret"),
        ({"etc/dangling": "/nowhere/file"}, "/etc/dangling", "nowhere/file"),  # its target is created
        ({"etc/dangling": "../../../nowhere"}, "/etc/dangling/deeper", "nowhere/deeper"),
    ],
)
def test_resolution_never_leaves_the_root(root, root_fd, links, path, expected):
    for name, target in links.items():
        link(root, name, target)
    resolved = where(make_in_root(FakeSyscalls(), root_fd, path))
    assert resolved == os.path.join(str(root), expected)
    assert os.path.exists(resolved)


def test_symlink_chain_through_parent_dirs(root, root_fd):
    link(root, "data/a", "../data/b")
    link(root, "data/b", "/data/c")
    link(root, "data/c", "../../../../../etc")
    assert where(make_in_root(FakeSyscalls(), root_fd, "/data/a/passwd")) == str(root / "etc" / "passwd")


def test_a_missing_file_target_is_created_as_an_empty_file(root, root_fd):
    link(root, "etc/hosts", "/run/hosts")  # dangling: the file is created where it points, inside
    assert where(make_in_root(FakeSyscalls(), root_fd, "/etc/hosts", file=True)) == str(root / "run" / "hosts")
    assert (root / "run" / "hosts").read_text() == ""


def test_creation_happens_in_the_parents_fd_and_resolution_in_the_root(root, root_fd):
    fake = FakeSyscalls()
    os.close(make_in_root(fake, root_fd, "/a/b"))
    assert (root / "a" / "b").is_dir()
    opened = fake.calls_to("openat2")
    assert {dirfd for dirfd, *_ in opened} == {root_fd}
    assert {resolve for *_, resolve in opened} == {k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS}
    assert all(flags & os.O_PATH and flags & os.O_CLOEXEC for _, _, flags, _, _ in opened)


@pytest.mark.parametrize(
    "links", [{"loop": "loop"}, {"a": "b", "b": "/a"}, {"a": "a/../a"}, {"a": "/../../a"}]
)
def test_symlink_loops_are_an_error(root, root_fd, links):
    for name, target in links.items():
        link(root, name, target)
    with pytest.raises(InvalidArgument, match="[Tt]oo many levels of symbolic links"):
        make_in_root(FakeSyscalls(), root_fd, "/a" if "a" in links else "/loop")


def test_a_file_in_the_middle_is_not_a_directory(root, root_fd):
    with pytest.raises(NotADirectoryError):
        make_in_root(FakeSyscalls(), root_fd, "/etc/passwd/x")


def test_a_magic_link_is_refused():
    # It would jump to wherever that process's root is; only the host's root has a /proc here.
    host_root = os.open("/", os.O_PATH)
    try:
        with pytest.raises(OSError) as raised:
            open_in_root(FakeSyscalls(), host_root, "/proc/self/root/etc", os.O_PATH)
    finally:
        os.close(host_root)
    assert raised.value.errno == errno.ELOOP


def test_a_raced_walk_is_tried_again(root, root_fd):
    fake = FakeSyscalls()
    fake.fail("openat2", errno.EAGAIN, times=2)  # the kernel's answer when a rename raced a ".."
    assert where(open_in_root(fake, root_fd, "/etc", os.O_PATH)) == str(root / "etc")
    assert len(fake.calls_to("openat2")) == 3
