"""The standard container mount plan applied to a real (empty) rootfs, then pivot_root into it.

Everything happens in a forked child that first makes its mount namespace private, so no mount
outlives it and none reaches the host."""

import errno
import os
import stat

import pytest

from runtime.linux import constants as k
from runtime.linux import proc
from runtime.linux.mounts import (
    MountSpec,
    apply_mount_plan,
    bind,
    container_mount_plan,
    mount_one,
)
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child
from tests.e2e.cgroupfiles import V2

pytestmark = pytest.mark.root
NEW_CONTAINER = k.CLONE_NEWNS | k.CLONE_NEWUTS | k.CLONE_NEWIPC | k.CLONE_NEWPID | k.CLONE_NEWNET


@pytest.fixture(autouse=True)
def _root(tmp_path):
    """Every mount a test makes is under its tmp_path (other work on the machine may mount elsewhere
    meanwhile): none of them may show in the test runner's namespace."""
    assert os.geteuid() == 0, "needs root"
    yield
    leaked = [m for m in proc.mount_points() if m.startswith(f"{tmp_path}/") or m == str(tmp_path)]
    assert leaked == [], "a mount leaked into the test runner's namespace"
    assert proc.zombies_under(os.getpid()) == ()


def in_container(fn):
    """Run fn as PID 1 of fresh namespaces with a private mount tree."""

    def outer():
        sc = LinuxSyscalls()
        sc.unshare(NEW_CONTAINER)
        sc.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
        return run_in_child(fn)

    return run_in_child(outer)


def is_readonly(path: str) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def test_standard_plan_then_pivot_root(tmp_path):
    rootfs = str(tmp_path / "rootfs")
    os.mkdir(rootfs)
    # The plan for the hierarchy this node runs: v1's memory directory bound, or cgroup2 mounted.
    plan = container_mount_plan(cgroup_v1=None if V2 else {"memory": "/sys/fs/cgroup/memory"})
    cgroup_dirs = ("/sys/fs/cgroup",) if V2 else ("/sys/fs/cgroup", "/sys/fs/cgroup/memory")
    cgroup_file = "/sys/fs/cgroup/cgroup.controllers" if V2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"

    def container():
        sc = LinuxSyscalls()
        sc.mount(rootfs, rootfs, None, k.MS_BIND | k.MS_REC)  # pivot_root needs a mount point
        apply_mount_plan(sc, plan, rootfs)
        os.chdir(rootfs)
        sc.pivot_root(".", ".")  # the old root ends up stacked under the new one...
        sc.umount2(".", k.MNT_DETACH)  # ...and is detached here
        os.chdir("/")
        null = os.stat("/dev/null")
        return {
            "pid": os.getpid(),
            "proc_sees_pid_1": os.path.exists("/proc/1/stat"),
            "root": sorted(os.listdir("/")),
            "dev_null": (stat.S_ISCHR(null.st_mode), os.major(null.st_rdev), os.minor(null.st_rdev),
                         stat.S_IMODE(null.st_mode)),
            # Masked files read as /dev/null, masked directories as empty (those this kernel has).
            "keys_masked": os.stat("/proc/keys").st_rdev == os.makedev(1, 3),
            "acpi_masked": os.listdir("/proc/acpi") == [] and is_readonly("/proc/acpi"),
            "firmware_masked": os.listdir("/sys/firmware") == [],
            "ro": {p: is_readonly(p) for p in ("/proc/sys", "/sys", *cgroup_dirs, "/proc", "/dev", "/dev/shm")},
            "ptmx": os.readlink("/dev/ptmx"),
            "pts_usable": os.path.exists("/dev/pts/ptmx"),
            "cgroup_files": os.path.exists(cgroup_file),
            "write_sysctl": _errno_of_write("/proc/sys/kernel/hostname"),  # namespaced, yet read-only
        }  # fmt: skip

    got = in_container(container)
    assert got["pid"] == 1 and got["proc_sees_pid_1"]
    assert got["root"] == ["dev", "proc", "sys"]
    assert got["dev_null"] == (True, 1, 3, 0o666)
    assert got["keys_masked"] and got["acpi_masked"] and got["firmware_masked"]
    assert got["ro"] == {
        "/proc/sys": True, "/sys": True, **dict.fromkeys(cgroup_dirs, True),
        "/proc": False, "/dev": False, "/dev/shm": False,
    }  # fmt: skip
    assert got["ptmx"] == "pts/ptmx" and got["pts_usable"]
    assert got["cgroup_files"]
    assert got["write_sysctl"] == errno.EROFS


def _errno_of_write(path: str) -> int:
    try:
        with open(path, "w") as f:
            f.write("")
    except OSError as e:
        return e.errno
    return 0


def test_recursive_readonly_bind_covers_submounts(tmp_path):
    rootfs, volume = tmp_path / "rootfs", tmp_path / "volume"
    rootfs.mkdir()
    volume.mkdir()

    def container():
        sc = LinuxSyscalls()
        sc.mount("tmpfs", str(volume), "tmpfs", 0, "size=1m")
        os.mkdir(volume / "sub")
        sc.mount("tmpfs", str(volume / "sub"), "tmpfs", 0, "size=1m")
        mount_one(sc, bind(str(volume), "/plain-ro", readonly=True), str(rootfs))
        mount_one(sc, bind(str(volume), "/all-ro", readonly=True, recursive_readonly=True), str(rootfs))
        return {
            "plain": (is_readonly(f"{rootfs}/plain-ro"), is_readonly(f"{rootfs}/plain-ro/sub")),
            "recursive": (is_readonly(f"{rootfs}/all-ro"), is_readonly(f"{rootfs}/all-ro/sub")),
            "source": (is_readonly(str(volume)), is_readonly(str(volume / "sub"))),
        }

    assert in_container(container) == {
        "plain": (True, False),  # only the top mount, as Kubernetes' readOnly without recursion
        "recursive": (True, True),
        "source": (False, False),
    }


def test_bind_devices_in_place_of_mknod(tmp_path):
    rootfs = str(tmp_path / "rootfs")
    os.mkdir(rootfs)
    plan = container_mount_plan(bind_devices=True)

    def container():
        apply_mount_plan(LinuxSyscalls(), plan, rootfs)
        with open(f"{rootfs}/dev/zero", "rb") as zero:
            return os.stat(f"{rootfs}/dev/urandom").st_rdev == os.makedev(1, 9), zero.read(4)

    assert in_container(container) == (True, b"\0\0\0\0")


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_a_symlinked_target_pointing_out_of_the_rootfs_is_mounted_inside_it(tmp_path, link):
    rootfs, victim, volume = tmp_path / "rootfs", tmp_path / "host-victim", tmp_path / "volume"
    for d in (rootfs, victim, volume):
        d.mkdir()
    (volume / "from-volume").write_text("")
    (volume / "tmp").mkdir()
    # /data -> the host's victim directory, if followed on the host.
    os.symlink(str(victim) if link == "absolute" else "../" * 12 + str(victim).lstrip("/"), rootfs / "data")
    inside = rootfs / str(victim).lstrip("/")

    def container():
        sc = LinuxSyscalls()
        mount_one(sc, bind(str(volume), "/data", readonly=True), str(rootfs))
        mount_one(sc, MountSpec("tmpfs", "/data/tmp", "tmpfs", 0, "size=1m"), str(rootfs))
        points = proc.mount_points()
        return {
            "victim": ([p for p in points if p.startswith(str(victim))], sorted(os.listdir(victim))),
            "inside": ([p for p in points if p.startswith(str(inside))], sorted(os.listdir(inside)),
                       is_readonly(str(inside))),
        }

    assert in_container(container) == {
        "victim": ([], []),
        "inside": ([str(inside), f"{inside}/tmp"], ["from-volume", "tmp"], True),
    }


@pytest.mark.parametrize("target", ["/data", "/data/sub"])
def test_a_target_swapped_for_a_symlink_before_the_mount_is_still_mounted_inside(tmp_path, target):
    """CVE-2021-30465 with the real kernel: the directory on the target's path is swapped for a
    symlink to a host directory after the target was resolved, right before mount(2)."""
    rootfs, victim = tmp_path / "rootfs", tmp_path / "host-victim"
    (rootfs / "data" / "sub").mkdir(parents=True)
    (victim / "sub").mkdir(parents=True)
    moved = rootfs / "data-moved" / target.removeprefix("/data").lstrip("/")

    class SwapBeforeMount(LinuxSyscalls):
        swapped = False

        def mount(self, source, target, fstype, flags, data=None):
            if not self.swapped:
                self.swapped = True
                os.rename(rootfs / "data", rootfs / "data-moved")
                os.symlink(str(victim), rootfs / "data")
            super().mount(source, target, fstype, flags, data)

    def container():
        mount_one(SwapBeforeMount(), MountSpec("tmpfs", target, "tmpfs", 0, "size=1m"), str(rootfs))
        points = proc.mount_points()
        return [p for p in points if p.startswith(str(victim))], [p for p in points if p.startswith(str(moved))]

    assert in_container(container) == ([], [str(moved)])
