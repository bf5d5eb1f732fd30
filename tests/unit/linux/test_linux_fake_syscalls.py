import errno
import os

import pytest

from runtime.linux import constants as k
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.linux.testing import FakeSyscalls


def test_fake_implements_every_protocol_method():
    protocol = {name for name in vars(Syscalls) if not name.startswith("_")}
    assert protocol <= set(dir(FakeSyscalls))
    assert protocol <= set(dir(LinuxSyscalls))


def test_records_calls_in_order():
    fake = FakeSyscalls()
    fake.unshare(k.CLONE_NEWNS)
    fake.mount("proc", "/r/proc", "proc", k.MS_NOSUID)
    fake.sethostname("pod")
    assert fake.calls == [
        ("unshare", (k.CLONE_NEWNS,)),
        ("mount", ("proc", "/r/proc", "proc", k.MS_NOSUID, None)),
        ("sethostname", ("pod",)),
    ]
    assert fake.calls_to("sethostname") == [("pod",)]


def test_injected_failure_matches_predicate_and_count():
    fake = FakeSyscalls()
    fake.fail("mount", errno.EBUSY, when=lambda source, target, *_: target == "/b", times=1)
    fake.mount(None, "/a", None, 0)
    with pytest.raises(OSError) as raised:
        fake.mount(None, "/b", None, 0)
    assert raised.value.errno == errno.EBUSY and "/b" in str(raised.value)
    fake.mount(None, "/b", None, 0)  # only once
    assert [args[1] for args in fake.calls_to("mount")] == ["/a", "/b", "/b"]


def test_capset_updates_what_capget_returns():
    fake = FakeSyscalls()
    fake.capset(1, 3, 0)
    assert fake.capget() == (1, 3, 0)


def test_pivot_root_number_per_architecture():
    assert k.pivot_root_number("x86_64") == 155
    assert k.pivot_root_number("aarch64") == 41
    with pytest.raises(NotImplementedError):
        k.pivot_root_number("sparc")


def test_fd_paths_are_also_recorded_as_the_places_they_named(tmp_path):
    fake = FakeSyscalls()
    fd = os.open(tmp_path, os.O_PATH)
    try:
        fake.fail("mknod", errno.EEXIST, when=lambda path, *_: path == f"{tmp_path}/null")
        fake.mount(None, f"/proc/self/fd/{fd}", None, 0)
        with pytest.raises(FileExistsError):
            fake.mknod(f"/proc/self/fd/{fd}/null", 0, 0)
    finally:
        os.close(fd)
    assert fake.calls_to("mount") == [(None, f"/proc/self/fd/{fd}", None, 0, None)]
    assert fake.calls_to("mount", resolved=True) == [(None, str(tmp_path), None, 0, None)]
    assert fake.calls_to("mknod", resolved=True) == [(f"{tmp_path}/null", 0, 0)]
