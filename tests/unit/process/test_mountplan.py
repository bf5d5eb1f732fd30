"""A container's mount plan from its InitSpec, in and out of a user namespace, and how init
applies an id-mapped bind (through the fake seam)."""
from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from runtime.container.model import IdMapping, UserNamespace
from runtime.errors import FailedPrecondition, Internal
from runtime.linux import constants as k
from runtime.linux.mounts import DEVPTS_OPTIONS, MountPlan, apply_mount_plan, bind
from runtime.linux.testing import FakeSyscalls
from runtime.process.initspec import BindMount, InitSpec, Namespaces
from runtime.process.mountplan import container_plan, overlay_options

NNN = k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV
USERNS = UserNamespace(IdMapping(0, 100000, 65536), IdMapping(0, 300000, 65536))
SPEC = InitSpec(id="c1", args=("sh",), env=(), cwd="/", lowerdirs=("/l2", "/l1"), upperdir="/c1/upper",
                workdir="/c1/work", rootfs="/c1/rootfs", shm_path="/pod/shm",
                mounts=(BindMount("/pod/hosts", "/etc/hosts", is_file=True, idmap=True),
                        BindMount("/host/v", "/v", readonly=True),))
IN_USERNS = replace(SPEC, namespaces=Namespaces(user="/pod/userns"), userns=USERNS)
PRIVATE = k.MS_PRIVATE | k.MS_REC


def by_target(plan: MountPlan) -> dict[str, object]:
    return {m.target: m for m in plan.mounts}


def test_outside_a_user_namespace_nothing_is_idmapped() -> None:
    plan = container_plan(SPEC)
    m = by_target(plan)
    assert plan.idmap_userns == "" and plan.layer_staging == ""
    assert m["/dev"].data == "mode=755,size=65536k"
    assert m["/dev/pts"].data == DEVPTS_OPTIONS
    assert m["/dev/shm"] == bind("/pod/shm", "/dev/shm", flags=NNN)
    assert m["/etc/hosts"] == bind("/pod/hosts", "/etc/hosts", propagation=PRIVATE, idmap=True)  # as the spec says
    assert m["/v"] == bind("/host/v", "/v", readonly=True, propagation=PRIVATE)


def test_in_a_user_namespace_the_pods_root_owns_dev_and_terminals() -> None:
    plan = container_plan(IN_USERNS)
    m = by_target(plan)
    assert plan.idmap_userns == "/pod/userns"
    assert plan.layer_staging == "/c1/layers"  # beside the rootfs, in the container's state dir
    assert m["/dev"].data == "mode=755,size=65536k,uid=100000,gid=300000"
    assert m["/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620,gid=300005"  # the pod's tty group
    # The pod's shm tmpfs is its root's (made so): a plain bind, as tmpfs is id-mapped only since 6.3.
    assert m["/dev/shm"] == bind("/pod/shm", "/dev/shm", flags=NNN)
    assert m["/etc/hosts"].idmap and not m["/v"].idmap
    # sysfs, proc and cgroups mount as for any container: init mounts them before it joins
    assert m["/sys"].fstype == "sysfs" and m["/proc"].fstype == "proc"


def test_a_user_namespace_too_small_for_the_tty_group_leaves_terminals_to_the_mounter() -> None:
    small = replace(IN_USERNS, userns=UserNamespace(IdMapping(0, 100000, 5), IdMapping(0, 300000, 5)))
    assert by_target(container_plan(small))["/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620"


def test_a_tty_group_mapped_past_2_to_the_31_leaves_terminals_to_the_mounter() -> None:
    """The kubelet picks ranges up to 2^32; Linux 6.1's devpts refuses such a gid= (EINVAL)."""
    high = replace(IN_USERNS, userns=UserNamespace(IdMapping(0, 3321364480, 65536), IdMapping(0, 3321364480, 65536)))
    assert by_target(container_plan(high))["/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620"
    below = replace(IN_USERNS, userns=UserNamespace(IdMapping(0, 2**31 - 6, 65536), IdMapping(0, 2**31 - 6, 65536)))
    assert by_target(container_plan(below))["/dev/pts"].data.endswith(f",gid={2**31 - 1}")


def test_overlay_options() -> None:
    assert overlay_options(SPEC, SPEC.lowerdirs) == "lowerdir=/l2:/l1,upperdir=/c1/upper,workdir=/c1/work"
    assert overlay_options(SPEC, ("/c1/layers/0", "/c1/layers/1")) == \
        "lowerdir=/c1/layers/0:/c1/layers/1,upperdir=/c1/upper,workdir=/c1/work"


@pytest.fixture
def userns_file(tmp_path):
    path = tmp_path / "userns"  # a stand-in for the pin: the plan only opens it
    path.write_text("")
    return str(path)


def test_an_idmapped_bind_is_cloned_mapped_and_moved_onto_its_target(tmp_path, userns_file) -> None:
    rootfs, volume = tmp_path / "rootfs", tmp_path / "volume"
    rootfs.mkdir()
    volume.mkdir()
    fake = FakeSyscalls()
    plan = MountPlan(mounts=(bind(str(volume), "/v", readonly=True, idmap=True),), devices=(), symlinks=(),
                     masked=(), readonly=(), idmap_userns=userns_file)
    apply_mount_plan(fake, plan, str(rootfs))
    names = [name for name, _ in fake.calls if name not in ("openat2",)]
    assert names == ["open_tree", "mount_setattr_idmap", "move_mount", "mount"]
    assert fake.calls_to("open_tree")[0][1:] == ("", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH
                                                 | k.AT_RECURSIVE)
    tree, userns_fd, recursive = fake.calls_to("mount_setattr_idmap")[0]
    (moved,) = fake.calls_to("move_mount")
    assert recursive and moved[0] == tree
    assert (moved[1], moved[3], moved[4]) == ("", "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)
    assert (rootfs / "v").is_dir()  # the target it was moved onto, made inside the root
    (remount,) = fake.calls_to("mount", resolved=True)  # the read-only flag, as for any bind
    assert remount[1] == f"{rootfs}/v" and remount[3] & (k.MS_REMOUNT | k.MS_RDONLY) == k.MS_REMOUNT | k.MS_RDONLY


def test_an_idmapped_bind_needs_the_plans_user_namespace(tmp_path) -> None:
    (tmp_path / "rootfs").mkdir()
    plan = MountPlan(mounts=(bind("/x", "/v", idmap=True),), devices=(), symlinks=(), masked=(), readonly=())
    with pytest.raises(Internal, match="id-mapped, but not a bind in a user namespace"):
        apply_mount_plan(FakeSyscalls(), plan, str(tmp_path / "rootfs"))


def test_a_volume_whose_filesystem_refuses_idmapping_fails_the_start(tmp_path, userns_file) -> None:
    (tmp_path / "rootfs").mkdir()
    fake = FakeSyscalls()
    fake.fail("mount_setattr_idmap", errno.EINVAL)
    plan = MountPlan(mounts=(bind(str(tmp_path), "/v", idmap=True),), devices=(), symlinks=(), masked=(),
                     readonly=(), idmap_userns=userns_file)
    with pytest.raises(FailedPrecondition, match=f"id-mapping {tmp_path}: its filesystem does not support"):
        apply_mount_plan(fake, plan, str(tmp_path / "rootfs"))
