import signal

import pytest

from runtime.cgroups import cgroupfs
from runtime.cgroups.resources import Resources
from runtime.cgroups.selfjoin import open_tasks_files
from runtime.cgroups.stats_reader import read_v2_stats
from runtime.cgroups.v2 import V2Manager, controllers_to_enable
from runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound

MiB = 1 << 20
POD = (
    "/kubepods.slice/kubepods-burstable.slice"
    "/kubepods-burstable-pod0a1b2c3d_1111_2222_3333_444455556666.slice"
)
CONTAINER = POD + "/cri-pycrid-6d1d1e5c2f3b.scope"
NEW = POD + "/cri-pycrid-new0001.scope"


def read(tree, path, name):
    return (tree / path.lstrip("/") / name).read_text()


@pytest.fixture
def manager(v2_tree, kills):
    return V2Manager(str(v2_tree), kill=kills, freeze_timeout_s=0.01)


@pytest.fixture
def writes(monkeypatch):
    calls = []
    real = cgroupfs.write

    def record(directory, name, value):
        calls.append((name, value))
        real(directory, name, value)

    monkeypatch.setattr(cgroupfs, "write", record)
    return calls


@pytest.mark.parametrize(
    "wanted, available, enabled, expected",
    [
        ({"cpu", "memory"}, "cpuset cpu io memory pids", "", ["cpu", "memory"]),
        ({"cpu", "memory"}, "cpuset cpu io memory pids", "cpu", ["memory"]),
        ({"cpu", "memory"}, "cpu memory", "cpu memory", []),
        ({"hugetlb", "memory"}, "memory\n", "", ["memory"]),  # not offered: not asked for
        ({"cpu"}, "", "", []),
    ],
)
def test_controllers_to_enable(wanted, available, enabled, expected):
    assert controllers_to_enable(wanted, available, enabled) == expected


def test_create_writes_limits_in_the_leaf(v2_tree, manager):
    leaf = v2_tree / NEW.lstrip("/")
    leaf.mkdir()
    (leaf / "memory.high").write_text("max\n")  # the kernel makes it with the memory controller
    manager.create(NEW, Resources(
        cpu_shares=1024, cpu_quota=50000, cpu_period=100000, memory_limit_in_bytes=64 * MiB,
        memory_swap_limit_in_bytes=64 * MiB, pids_limit=50, unified={"memory.high": "max"},
    ))
    assert read(v2_tree, NEW, "cpu.weight") == "100"
    assert read(v2_tree, NEW, "cpu.max") == "50000 100000"
    assert read(v2_tree, NEW, "memory.max") == str(64 * MiB)
    assert read(v2_tree, NEW, "memory.swap.max") == "0"
    assert read(v2_tree, NEW, "pids.max") == "50"
    assert read(v2_tree, NEW, "memory.high") == "max"
    # Parents already delegate everything needed: their subtree_control is left alone.
    assert read(v2_tree, POD, "cgroup.subtree_control") == "cpuset cpu io memory hugetlb pids\n"


def test_create_enables_controllers_on_the_way_down_but_not_in_the_leaf(tmp_path, kills, writes):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cgroup.controllers").write_text("cpu io memory pids\n")
    V2Manager(str(tmp_path), kill=kills).create("/a/b/c", Resources(memory_limit_in_bytes=MiB))
    assert writes == [
        ("cgroup.subtree_control", "+io +memory +pids"),  # root: the stats set, cpu already on
        ("cgroup.subtree_control", "+cpu +io +memory +pids"),  # a
        # b is new and (on a fake tree) offers nothing; c is the leaf.
        ("memory.max", str(MiB)),
    ]
    assert not (tmp_path / "a" / "b" / "c" / "cgroup.subtree_control").exists()


def test_create_enables_controllers_the_limits_need(tmp_path, kills, writes):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    V2Manager(str(tmp_path), kill=kills).create(
        "/x", Resources(cpuset_cpus="0", hugepage_limits={"2MB": 0})
    )
    assert writes[0] == ("cgroup.subtree_control", "+cpuset +hugetlb")


def test_invalid_resources_fail_before_any_mkdir(v2_tree, manager):
    with pytest.raises(InvalidArgument):
        manager.create(NEW, Resources(memory_swap_limit_in_bytes=MiB))
    assert not manager.exists(NEW)


def test_failed_create_removes_the_leaf(v2_tree, manager, monkeypatch):
    real = cgroupfs.write

    def failing(directory, name, value):
        if name == "pids.max":
            raise Internal(f"cgroup {directory}: writing pids.max: Permission denied")
        real(directory, name, value)

    monkeypatch.setattr(cgroupfs, "write", failing)
    with pytest.raises(Internal, match="pids.max"):
        manager.create(NEW, Resources(cpu_shares=2, pids_limit=1))
    assert not manager.exists(NEW)
    assert manager.exists(POD)


def test_apply_updates_live_and_needs_the_cgroup(v2_tree, manager):
    manager.apply(CONTAINER, Resources(cpu_quota=-1, cpu_period=100000))
    assert read(v2_tree, CONTAINER, "cpu.max") == "max 100000"
    with pytest.raises(NotFound):
        manager.apply(NEW, Resources(cpu_shares=2))


def test_a_live_memory_limit_is_tried_as_memory_high_first(v2_tree, manager, writes):
    """v2 would OOM-kill to fit a memory.max below the usage; memory.high reclaims without
    killing, and only a limit the usage fits under after it reaches memory.max."""
    (v2_tree / CONTAINER.lstrip("/") / "memory.high").write_text("max\n")
    (v2_tree / CONTAINER.lstrip("/") / "memory.current").write_text(f"{40 * MiB}\n")
    manager.apply(CONTAINER, Resources(memory_limit_in_bytes=64 * MiB))
    assert writes == [("memory.high", str(64 * MiB)), ("memory.max", str(64 * MiB)), ("memory.high", "max")]
    writes.clear()
    with pytest.raises(FailedPrecondition, match=f"memory.max={32 * MiB}: {40 * MiB} bytes in use"):
        manager.apply(CONTAINER, Resources(memory_limit_in_bytes=32 * MiB))
    assert writes == [("memory.high", str(32 * MiB)), ("memory.high", "max")]
    assert read(v2_tree, CONTAINER, "memory.max") == str(64 * MiB)
    manager.apply(CONTAINER, Resources(memory_limit_in_bytes=-1))  # lifting it is never refused
    assert read(v2_tree, CONTAINER, "memory.max") == "max"


def test_a_new_cgroup_gets_its_memory_limit_directly(v2_tree, manager, writes):
    manager.create(NEW, Resources(memory_limit_in_bytes=64 * MiB))
    assert ("memory.max", str(64 * MiB)) in writes and not any(name == "memory.high" for name, _ in writes)


def test_add_process_and_pids(v2_tree, manager):
    manager.create(NEW, Resources())
    manager.add_process(NEW, 4242)
    assert read(v2_tree, NEW, "cgroup.procs") == "4242"
    assert manager.pids(POD) == [4242, 21020, 21034]
    assert manager.pids(CONTAINER) == [21020, 21034]
    with pytest.raises(NotFound):
        manager.add_process("/nope", 1)


def test_kill_all_with_sigkill_uses_cgroup_kill(v2_tree, manager, kills):
    manager.kill_all(CONTAINER)
    assert read(v2_tree, CONTAINER, "cgroup.kill") == "1"
    assert kills.calls == []


def test_kill_all_with_another_signal_freezes_and_thaws(v2_tree, manager, kills, writes):
    manager.kill_all(CONTAINER, signal.SIGTERM)
    assert kills.calls == [(21020, signal.SIGTERM), (21034, signal.SIGTERM)]
    assert writes == [("cgroup.freeze", "1"), ("cgroup.freeze", "0")]


def test_kill_all_on_old_kernels_signals_each_process(v2_tree, manager, kills):
    leaf = v2_tree / CONTAINER.lstrip("/")
    (leaf / "cgroup.kill").unlink()
    (leaf / "cgroup.freeze").unlink()
    manager.kill_all(CONTAINER)
    assert kills.calls == [(21020, signal.SIGKILL), (21034, signal.SIGKILL)]


def test_kill_all_of_a_missing_cgroup_does_nothing(manager, kills):
    manager.kill_all("/nope", signal.SIGTERM)
    assert kills.calls == []


def test_remove_subtree_and_idempotent(v2_tree, manager):
    manager.remove(POD)
    assert not manager.exists(CONTAINER) and not manager.exists(POD)
    assert (v2_tree / "kubepods.slice" / "kubepods-burstable.slice").is_dir()
    manager.remove(POD)
    with pytest.raises(FailedPrecondition):
        manager.remove("/")


def test_oom_events(manager):
    assert manager.oom_events(CONTAINER) == 1
    assert manager.oom_events(NEW) == 0


def test_stats_reads_the_same_files_as_the_reader(v2_tree, manager):
    assert manager.stats(CONTAINER) == read_v2_stats(str(v2_tree), CONTAINER)


def test_v2_has_no_tasks_files_to_join_by(tmp_path) -> None:
    (tmp_path / "cgroup.controllers").write_text("")
    m = V2Manager(str(tmp_path))
    m.create("/c", Resources())
    assert open_tasks_files(m, "/c") == []
    with pytest.raises(NotFound):
        open_tasks_files(m, "/gone")


def test_a_unified_key_the_cgroup_has_no_file_for_is_invalid_and_leaves_nothing(v2_tree, manager):
    with pytest.raises(InvalidArgument, match="unified memory.high: no such file"):
        manager.create(NEW, Resources(memory_limit_in_bytes=64 * MiB, unified={"memory.high": "max"}))
    assert not (v2_tree / NEW.lstrip("/")).exists()
