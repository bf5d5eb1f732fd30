import errno
import os
import stat

import pytest

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.mounts import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    DEVPTS_OPTIONS,
    MountPlan,
    MountSpec,
    apply_mount_plan,
    bind,
    container_mount_plan,
    mount_one,
)
from runtime.linux.testing import FakeSyscalls

NNN = k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV


def by_target(plan):
    return {m.target: m for m in plan.mounts}


def test_default_plan():
    plan = container_mount_plan()
    assert [m.target for m in plan.mounts] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
    ]  # fmt: skip
    m = by_target(plan)
    assert m["/proc"] == MountSpec("proc", "/proc", "proc", NNN)
    dev_flags = k.MS_NOSUID | k.MS_STRICTATIME
    assert m["/dev"] == MountSpec("tmpfs", "/dev", "tmpfs", dev_flags, "mode=755,size=65536k")
    assert m["/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert m["/dev/shm"] == MountSpec("shm", "/dev/shm", "tmpfs", NNN, "mode=1777,size=65536k")
    assert m["/sys"].flags == NNN | k.MS_RDONLY
    assert m["/sys/fs/cgroup"].fstype == "cgroup2" and m["/sys/fs/cgroup"].flags & k.MS_RDONLY
    assert [d.path for d in plan.devices] == [
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
    ]  # fmt: skip
    assert ("/dev/ptmx", "pts/ptmx") in plan.symlinks and ("/dev/fd", "/proc/self/fd") in plan.symlinks
    assert "/proc/kcore" in plan.masked and "/sys/devices/virtual/powercap" in plan.masked
    assert plan.readonly == ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def test_privileged_plan_is_writable_and_unmasked():
    plan = container_mount_plan(privileged=True)
    assert plan.masked == () and plan.readonly == ()
    assert not by_target(plan)["/sys"].flags & k.MS_RDONLY
    assert not by_target(plan)["/sys/fs/cgroup"].flags & k.MS_RDONLY


def test_pod_shm_cgroup_v1_and_extra_mounts():
    volume = bind("/var/lib/kubelet/pods/x/vol", "/data", readonly=True, propagation=k.MS_SLAVE | k.MS_REC)
    plan = container_mount_plan(
        shm_source="/run/pycrid/pod/shm",
        cgroup_v1={"memory": "/sys/fs/cgroup/memory/pod/c"},
        extra_mounts=[volume],
    )
    m = by_target(plan)
    assert m["/dev/shm"] == MountSpec("/run/pycrid/pod/shm", "/dev/shm", None, NNN | k.MS_BIND | k.MS_REC)
    assert m["/sys/fs/cgroup"].fstype == "tmpfs"
    assert m["/sys/fs/cgroup/memory"].source == "/sys/fs/cgroup/memory/pod/c"
    assert m["/sys/fs/cgroup/memory"].flags == NNN | k.MS_BIND | k.MS_REC | k.MS_RDONLY
    assert plan.mounts[-1] == volume and volume.flags == k.MS_BIND | k.MS_REC | k.MS_RDONLY
    assert plan.readonly[-1] == "/sys/fs/cgroup"


@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "proc" / "acpi").mkdir(parents=True)  # a masked directory
    (r / "proc" / "kcore").write_text("")  # a masked file
    (r / "proc" / "sys").mkdir()  # a read-only path
    (r / "sys").mkdir()
    return r


def test_apply_standard_plan_records_kernel_calls_in_order(rootfs):
    fake = FakeSyscalls()
    apply_mount_plan(fake, container_mount_plan(), str(rootfs))
    r = str(rootfs)
    # Every target is mounted on by fd; resolved=True shows the place each fd named at the call.
    assert all(m[1].startswith("/proc/self/fd/") for m in fake.calls_to("mount"))
    # ...and every fd was opened from the root's fd, resolved as if it were "/".
    opened = fake.calls_to("openat2")
    assert len({dirfd for dirfd, *_ in opened}) == 1
    assert {resolve for *_, resolve in opened} == {k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS}
    mounts = fake.calls_to("mount", resolved=True)
    assert mounts[:3] == [
        ("proc", f"{r}/proc", "proc", NNN, None),
        ("tmpfs", f"{r}/dev", "tmpfs", k.MS_NOSUID | k.MS_STRICTATIME, "mode=755,size=65536k"),
        ("devpts", f"{r}/dev/pts", "devpts", k.MS_NOSUID | k.MS_NOEXEC, DEVPTS_OPTIONS),
    ]
    assert ("tmpfs", f"{r}/proc/acpi", "tmpfs", k.MS_RDONLY, None) in mounts
    assert ("/dev/null", f"{r}/proc/kcore", None, k.MS_BIND, None) in mounts
    assert (f"{r}/proc/sys", f"{r}/proc/sys", None, k.MS_BIND | k.MS_REC, None) in mounts
    remount = [m for m in mounts if m[1] == f"{r}/proc/sys" and m[3] & k.MS_REMOUNT]
    assert len(remount) == 1 and remount[0][3] & (k.MS_BIND | k.MS_RDONLY) == k.MS_BIND | k.MS_RDONLY
    # Masked paths that do not exist in this rootfs are skipped.
    assert not [m for m in mounts if m[1].endswith("/proc/keys")]
    assert fake.calls_to("mknod", resolved=True)[0] == (f"{r}/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert all(m[0].startswith("/proc/self/fd/") for m in fake.calls_to("mknod"))
    assert len(fake.calls_to("mknod")) == 6
    assert os.readlink(rootfs / "dev" / "ptmx") == "pts/ptmx"
    assert os.readlink(rootfs / "dev" / "stderr") == "/proc/self/fd/2"
    # Masking runs after every device node is in place.
    last_mknod = max(i for i, (name, _) in enumerate(fake.calls) if name == "mknod")
    assert last_mknod < fake.resolved_calls.index(("mount", ("/dev/null", f"{r}/proc/kcore", None, k.MS_BIND, None)))


def test_bind_devices_instead_of_mknod(rootfs):
    fake = FakeSyscalls()
    plan = MountPlan(mounts=(), bind_devices=True, symlinks=(), masked=(), readonly=())
    apply_mount_plan(fake, plan, str(rootfs))
    assert not fake.calls_to("mknod")
    assert ("/dev/zero", f"{rootfs}/dev/zero", None, k.MS_BIND, None) in fake.calls_to("mount", resolved=True)
    assert (rootfs / "dev" / "zero").is_file()  # an empty file to bind onto


def test_hostile_rootfs_symlinks_stay_inside(rootfs, tmp_path):
    (rootfs / "proc").rename(tmp_path / "elsewhere")
    os.symlink("/../../../../", rootfs / "proc")  # /proc -> the host's root, if followed
    os.symlink(str(tmp_path / "outside"), rootfs / "data")
    fake = FakeSyscalls()
    mount_one(fake, MountSpec("proc", "/proc", "proc", NNN), str(rootfs))
    mount_one(fake, bind("/srv/vol", "/data"), str(rootfs))
    assert [m[1] for m in fake.calls_to("mount", resolved=True)] == [str(rootfs), f"{rootfs}{tmp_path}/outside"]
    assert not (tmp_path / "outside").exists()


def test_bind_flags_need_a_remount_keeping_locked_flags(rootfs):
    fake = FakeSyscalls()
    mount_one(fake, bind(str(rootfs / "sys"), "/vol", readonly=True, flags=k.MS_NOSUID), str(rootfs))
    first, second = fake.calls_to("mount", resolved=True)
    assert first == (str(rootfs / "sys"), f"{rootfs}/vol", None, k.MS_BIND | k.MS_REC, None)
    assert second[3] & (k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NOSUID) == (
        k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NOSUID
    )


def test_propagation_and_recursive_readonly(rootfs):
    fake = FakeSyscalls()
    spec = bind("/srv", "/srv", recursive_readonly=True, propagation=k.MS_SLAVE | k.MS_REC)
    mount_one(fake, spec, str(rootfs))
    assert fake.calls_to("mount_setattr", resolved=True) == [(f"{rootfs}/srv", k.MOUNT_ATTR_RDONLY, 0, 0, True)]
    assert fake.calls_to("mount", resolved=True)[-1] == (None, f"{rootfs}/srv", None, k.MS_SLAVE | k.MS_REC, None)


def test_mount_errors_name_the_mount(rootfs):
    fake = FakeSyscalls()
    fake.fail("mount", errno.EPERM, when=lambda source, target, *_: target.endswith("/sys"))
    with pytest.raises(Internal, match=r"mounting sysfs on /sys in .*rootfs.*Operation not permitted"):
        apply_mount_plan(fake, container_mount_plan(), str(rootfs))


def test_masked_and_readonly_defaults_match_containerd():
    assert len(DEFAULT_MASKED_PATHS) == 11 and "/proc/timer_stats" in DEFAULT_MASKED_PATHS
    assert "/proc/sysrq-trigger" in DEFAULT_READONLY_PATHS


@pytest.mark.parametrize("target", ["/data", "/data/sub"])
def test_a_component_swapped_for_a_symlink_after_resolution_does_not_move_the_mount(rootfs, tmp_path, target):
    """CVE-2021-30465: a container sharing a volume swaps a directory on the target's path for a
    symlink out of the rootfs between our resolving the target and mounting on it."""
    victim = tmp_path / "host-victim"
    (victim / "sub").mkdir(parents=True)
    (rootfs / "data" / "sub").mkdir(parents=True)

    class SwapBeforeMount(FakeSyscalls):
        def __init__(self):
            super().__init__()
            self.landed = []

        def mount(self, source, target, fstype, flags, data=None):
            if not self.landed:  # the attacker wins the race right before the first mount
                os.rename(rootfs / "data", rootfs / "data-moved")
                os.symlink(str(victim), rootfs / "data")
            self.landed.append(os.path.realpath(target))
            super().mount(source, target, fstype, flags, data)

    fake = SwapBeforeMount()
    mount_one(fake, MountSpec("tmpfs", target, "tmpfs", NNN), str(rootfs))
    assert fake.landed == [str(rootfs / "data-moved" / target.removeprefix("/data/").removeprefix("/data"))
                           .rstrip("/")]


def test_a_target_swapped_while_reopened_after_the_mount_fails_the_mount(rootfs):
    """After mounting, the new mount is reached by resolving the path again; were the path
    swapped for a symlink meanwhile, the flags must not be applied to wherever it now leads."""
    (rootfs / "data").mkdir()
    (rootfs / "elsewhere").mkdir()

    class SwapOnReopen(FakeSyscalls):
        def openat2(self, dirfd, path, flags, mode=0, resolve=0):
            if path == "data" and self.calls_to("mount"):
                os.rename(rootfs / "data", rootfs / "data-moved")
                os.symlink("/elsewhere", rootfs / "data")
            return super().openat2(dirfd, path, flags, mode, resolve)

    fake = SwapOnReopen()
    with pytest.raises(Internal, match="was moved"):
        mount_one(fake, bind("/srv", "/data", readonly=True), str(rootfs))
    assert len(fake.calls_to("mount")) == 1  # no remount anywhere
