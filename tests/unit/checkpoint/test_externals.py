"""What of a container is outside it, for CRIU, and which containers can be checkpointed."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from runtime.checkpoint.externals import dumped_mounts, external_files, external_mounts, inspect, parse_mounts
from runtime.checkpoint.support import refusal
from runtime.process.initspec import HOST, POD, TARGET_PREFIX, BindMount, Device, InitSpec, Namespaces
from tests.unit.checkpoint.fakeproc import MOUNTINFO, fake_proc

SPEC = InitSpec(id="c1", args=("sh",), env=(), cwd="/", lowerdirs=("/l",), upperdir="/u", workdir="/w",
                rootfs="/r", namespaces=Namespaces(net="/run/s/netns", ipc="/run/s/ipcns", uts="/run/s/utsns"),
                mounts=(BindMount("/run/s/hosts", "/etc/hosts", is_file=True),
                        BindMount("/srv/data", "/data")),
                devices=(Device("/dev/fuse", "/dev/fuse"),), masked_paths=("/proc/acpi", "/proc/keys", "/proc/kcore"),
                shm_path="/run/s/shm", cgroup_v1_dirs={"cpu": "/sys/fs/cgroup/cpu/pycrid/c1"})


def test_external_mounts_of_a_spec() -> None:
    assert external_mounts(SPEC) == {
        "/etc/hosts": "/run/s/hosts", "/data": "/srv/data", "/dev/fuse": "/dev/fuse", "/dev/shm": "/run/s/shm",
        "/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu/pycrid/c1",
        "/proc/acpi": "/dev/null", "/proc/keys": "/dev/null", "/proc/kcore": "/dev/null"}


def test_inspect_reads_the_running_init(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 42)
    running = inspect(42, proc)
    assert running.net_inode == os.stat(f"{proc}/42/ns/net").st_ino
    inode = os.stat(tmp_path / "devnull").st_ino
    assert running.stdio == (f"file[18:{inode:x}]", "pipe:[11]", "pipe:[12]")  # mnt_id 24 = 0x18
    assert not running.terminal
    assert external_files(running) == (f"file[18:{inode:x}]",)
    assert running.mounts["/my data"] == "ext4" and running.mounts["/proc/acpi"] == "tmpfs"
    # Only what init has mounted; a masked directory is a tmpfs of its own, not a bind from outside.
    assert dumped_mounts(SPEC, running) == ("/dev/shm", "/etc/hosts", "/proc/keys", "/sys/fs/cgroup/cpu")


def test_a_terminal_on_stdio_is_noticed(tmp_path: Path) -> None:
    running = inspect(7, fake_proc(tmp_path, 7, ("/dev/pts/0", "/dev/pts/0", "/dev/pts/0")))
    assert running.terminal


def test_parse_mounts_keeps_the_last_of_a_mount_point() -> None:
    text = MOUNTINFO + "300 256 0:99 / /dev/shm rw - tmpfs tmpfs rw\n301 1 0:9 / /weird rw\n"
    mounts = parse_mounts(text)
    assert mounts["/dev/shm"] == "tmpfs" and "/weird" not in mounts


def test_refusals() -> None:
    assert refusal(SPEC) is None
    for changes, words in (
            ({"tty": True}, "TTY"),
            ({"namespaces": replace(SPEC.namespaces, pid=POD)}, "shared with others"),
            ({"namespaces": replace(SPEC.namespaces, pid=TARGET_PREFIX + "c0")}, "shared with others"),
            ({"namespaces": replace(SPEC.namespaces, pid=HOST)}, "the host's"),
            ({"namespaces": replace(SPEC.namespaces, net=HOST)}, "host network"),
            ({"namespaces": replace(SPEC.namespaces, ipc=HOST)}, "host's IPC"),
            ({"namespaces": replace(SPEC.namespaces, uts=HOST)}, "host's UTS"),
            ({"mounts": (BindMount("/srv/a", "/a:b"),)}, "/a:b")):
        why = refusal(replace(SPEC, **changes))  # type: ignore[arg-type]
        assert why is not None and words in why, (changes, why)
