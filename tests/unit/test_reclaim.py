"""The reclaimer on fakes: an in-memory cgroup manager, recorded syscalls, a mount table that
forgets what was unmounted, and real directories under tmp_path."""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from runtime.cgroups.resources import Resources
from runtime.cgroups.testing import FakeCgroupManager
from runtime.errors import Internal, InvalidArgument
from runtime.ids import new_id
from runtime.linux import constants as k
from runtime.linux.testing import FakeSyscalls
from runtime.reclaim import Reclaimed, Reclaimer, mounts_under

LOST, KEPT = new_id(), new_id()


class Machine:
    def __init__(self, base: Path) -> None:
        self.root, self.state = base / "root", base / "run"
        self.cgroups = FakeCgroupManager()
        self.syscalls = FakeSyscalls()
        self.mounted: list[str] = []

    def mount_points(self) -> tuple[str, ...]:
        """What is mounted, less what the code under test unmounted (each call takes the top one)."""
        left = list(self.mounted)
        for target, _flags in self.syscalls.calls_to("umount2"):
            if target in left:
                left.remove(target)
        return tuple(left)

    def cgroup(self, path: str, *pids: int) -> None:
        self.cgroups.create(path, Resources())
        for pid in pids:
            self.cgroups.add_process(path, pid)

    def container(self, container_id: str) -> list[Path]:
        data, run = self.root / "containers" / container_id, self.state / "containers" / container_id
        for d in (data / "upper" / "etc", data / "work", run / "rootfs"):
            d.mkdir(parents=True)
        (data / "upper" / "etc" / "motd").write_text("hi")
        (run / "exit.json").write_text("{}")
        self.mounted.append(str(run / "rootfs"))
        return [data, run]

    def sandbox(self, sandbox_id: str) -> Path:
        d = self.state / "sandboxes" / sandbox_id
        (d / "pause").mkdir(parents=True)
        for name in ("netns", "ipcns", "utsns", "hosts"):
            (d / name).write_text("")
        (d / "shm").mkdir()
        self.mounted += [str(d / "netns"), str(d / "ipcns"), str(d / "shm"), str(d / "utsns"), str(d / "shm")]
        return d

    def reclaimer(self, hooks: Sequence[Callable[[str], None]] = (), root: Path | None = None) -> Reclaimer:
        return Reclaimer(str(root or self.root), str(self.state), self.cgroups, self.syscalls,
                         mount_points=self.mount_points, pod_hooks=hooks)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_a_containers_processes_cgroups_mounts_and_dirs_go(machine: Machine) -> None:
    lost_dirs, kept_dirs = machine.container(LOST), machine.container(KEPT)
    machine.cgroup(f"/pycrid/{LOST}", 100, 101)
    machine.cgroup(f"/kubepods/pod1/cri-pycrid-{LOST}.scope", 102)  # under the other driver, elsewhere
    machine.cgroup(f"/pycrid/{KEPT}", 200)
    rootfs = str(lost_dirs[1] / "rootfs")

    done = machine.reclaimer().container(LOST)

    assert done == Reclaimed(cgroups=(f"/kubepods/pod1/cri-pycrid-{LOST}.scope", f"/pycrid/{LOST}"),
                             mounts=(rootfs,), dirs=tuple(str(d) for d in lost_dirs))
    assert sorted(machine.cgroups.signals) == sorted([(f"/pycrid/{LOST}", signal.SIGKILL),
                                                      (f"/kubepods/pod1/cri-pycrid-{LOST}.scope", signal.SIGKILL)])
    assert machine.cgroups.find({LOST, f"cri-pycrid-{LOST}.scope"}) == []
    assert machine.syscalls.calls_to("umount2") == [(rootfs, k.MNT_DETACH)]
    assert not any(d.exists() for d in lost_dirs)
    # Another container is untouched.
    assert machine.cgroups.pids(f"/pycrid/{KEPT}") == [200]
    assert all(d.is_dir() for d in kept_dirs) and str(kept_dirs[1] / "rootfs") in machine.mount_points()


def test_a_pods_hooks_run_first_then_its_pause_cgroup_and_pinned_namespaces_go(machine: Machine) -> None:
    d = machine.sandbox(LOST)
    kept = machine.sandbox(KEPT)
    machine.cgroup(f"/pycrid/{LOST}", 300)  # the pause
    seen: list[tuple[str, list]] = []

    def hook(sandbox_id: str) -> None:
        seen.append((sandbox_id, list(machine.cgroups.signals)))

    def broken(sandbox_id: str) -> None:
        raise RuntimeError("a hook that fails")

    done = machine.reclaimer(hooks=(broken, hook)).sandbox(LOST)

    assert seen == [(LOST, [])]  # called with the pod's id, before anything of it was killed
    assert done is not None and done.cgroups == (f"/pycrid/{LOST}",) and done.dirs == (str(d),)
    unmounted = [target for target, _ in machine.syscalls.calls_to("umount2")]
    assert sorted(unmounted) == sorted(str(d / n) for n in ("netns", "ipcns", "utsns", "shm", "shm"))
    assert not d.exists() and kept.is_dir()
    assert not any(m.startswith(str(d)) for m in machine.mount_points())


def test_reclaim_does_containers_before_pods(machine: Machine) -> None:
    machine.container(LOST)
    machine.sandbox(KEPT)
    order: list[str] = []
    reclaimer = machine.reclaimer(hooks=(lambda sandbox_id: order.append(
        "pod after the container" if not (machine.root / "containers" / LOST).exists() else "pod first"),))
    reclaimer.reclaim([LOST], [KEPT])
    assert order == ["pod after the container"]


def test_nothing_left_is_fine_and_reclaiming_twice_too(machine: Machine) -> None:
    assert machine.reclaimer().container(LOST) == Reclaimed((), (), ())
    machine.container(LOST)
    machine.reclaimer().container(LOST)
    assert machine.reclaimer().container(LOST) == Reclaimed((), (), ())


def test_a_mount_already_gone_is_not_an_error(machine: Machine) -> None:
    dirs = machine.container(LOST)
    machine.syscalls.fail("umount2", errno.EINVAL)  # listed, but gone by the time it is unmounted
    assert machine.reclaimer().container(LOST) is not None
    assert not any(d.exists() for d in dirs)


def test_a_dir_with_something_still_mounted_is_never_removed(machine: Machine,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    dirs = machine.container(LOST)
    stuck = tuple(machine.mounted)  # unmounting "works" but the mount stays
    reclaimer = Reclaimer(str(machine.root), str(machine.state), machine.cgroups, machine.syscalls,
                          mount_points=lambda: stuck)
    with caplog.at_level(logging.ERROR):
        assert reclaimer.container(LOST) is None
    assert (dirs[1] / "exit.json").exists() and (dirs[0] / "upper" / "etc" / "motd").exists()
    assert "still mounted" in caplog.text and LOST[:12] in caplog.text


@pytest.mark.parametrize("failure", ["umount", "cgroup"])
def test_a_failure_is_logged_and_leaves_the_rest_in_place(machine: Machine, failure: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    dirs = machine.container(LOST)
    machine.cgroup(f"/pycrid/{LOST}", 100)
    if failure == "umount":
        machine.syscalls.fail("umount2", errno.EBUSY)
    else:
        machine.cgroups.errors["remove"] = Internal(f"cgroup /pycrid/{LOST}: rmdir: busy")
    with caplog.at_level(logging.ERROR):
        assert machine.reclaimer().container(LOST) is None
    assert all(d.is_dir() for d in dirs)
    assert "left in place" in caplog.text


def test_a_symlinked_root_is_compared_as_the_kernel_lists_it(machine: Machine, tmp_path: Path) -> None:
    dirs = machine.container(LOST)
    machine.mounted.append(str(dirs[0] / "upper" / "etc"))  # a mount in the data dir, listed resolved
    link = tmp_path / "root-link"
    link.symlink_to(machine.root)
    done = machine.reclaimer(root=link).container(LOST)
    assert done is not None and str(dirs[0] / "upper" / "etc") in done.mounts
    assert not dirs[0].exists() and link.is_symlink()


def test_ids_that_are_not_ids_never_become_paths(machine: Machine) -> None:
    victim = machine.state / "containers" / "victim"
    victim.mkdir(parents=True)
    for bad in ("../containers/victim", "", "victim"):
        with pytest.raises(InvalidArgument):
            machine.reclaimer().container(bad)
        with pytest.raises(InvalidArgument):
            machine.reclaimer().sandbox(bad)
    assert victim.is_dir()


def test_mounts_under_is_by_path_component_and_deepest_first() -> None:
    table = ["/run/c1", "/run/c10/rootfs", "/run/c1/rootfs/proc", "/run/c1/rootfs", "/run/c1x"]
    assert mounts_under(["/run/c1/"], table) == ["/run/c1/rootfs/proc", "/run/c1/rootfs", "/run/c1"]
    assert mounts_under(["/run/c2"], table) == []


def test_a_run_dir_written_into_while_it_is_removed_is_removed_on_a_retry(machine: Machine,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod monitor writes a killed init's exit file right after reaping it: the first removal
    of the run dir can meet that write (ENOTEMPTY), and is tried again."""
    data, run = machine.container(LOST)
    real_rmtree = shutil.rmtree
    attempts: list[str] = []

    def rmtree_meeting_a_write(path: str, onerror: Callable[..., None]) -> None:
        attempts.append(path)
        if path == str(run) and attempts.count(path) == 1:
            onerror(os.rmdir, path, (OSError, OSError(errno.ENOTEMPTY, "Directory not empty"), None))
        real_rmtree(path, onerror=onerror)

    monkeypatch.setattr(shutil, "rmtree", rmtree_meeting_a_write)
    reclaimed = machine.reclaimer().container(LOST)
    assert reclaimed is not None and reclaimed.dirs == (str(data), str(run))
    assert attempts.count(str(run)) == 2 and not run.exists()
