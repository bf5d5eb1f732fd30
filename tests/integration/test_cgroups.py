"""The cgroup drivers against the real kernel: v1 hierarchies under /sys/fs/cgroup, and the v2
code paths on the controller-less cgroup2 mount of a hybrid node (/sys/fs/cgroup/unified).

Every cgroup lives under /pycrid-test-<random>; fixtures kill what they started and assert the
directories are gone, so a run leaves the machine as it found it.
"""

import os
import secrets
import signal
import subprocess
import time

import pytest

from runtime.cgroups.heldfiles import HeldFiles
from runtime.cgroups.manager import detect
from runtime.cgroups.resources import Resources
from runtime.cgroups.selfjoin import close_all, join_self, open_tasks_files
from runtime.cgroups.v1 import HIERARCHIES, V1Manager
from runtime.cgroups.v2 import V2Manager
from runtime.errors import InvalidArgument

pytestmark = pytest.mark.root

ROOT = "/sys/fs/cgroup"
UNIFIED = os.path.join(ROOT, "unified")
MiB = 1 << 20
# Waits for the stdin line, burns a little CPU and memory inside the cgroup, then sleeps.
WORKER = "read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000"


def started(argv: list[str], procs: list[subprocess.Popen]) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    procs.append(p)
    return p


def release(p: subprocess.Popen) -> None:
    """Let a worker that has been moved into its cgroup start its work."""
    p.stdin.write(b"go\n")
    p.stdin.close()


def cgroup_of(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup as controller list -> path ("" for the v2 line)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return {ctrls: path for _, ctrls, path in (line.rstrip("\n").split(":", 2) for line in f)}


def read(hierarchy_root: str, path: str, name: str) -> str:
    with open(os.path.join(hierarchy_root, path.lstrip("/"), name)) as f:
        return f.read().strip()


def leftovers(base: str) -> list[str]:
    """Directories named ``base`` in any hierarchy, v1 or the unified one."""
    roots = [os.path.join(ROOT, h) for h in (*HIERARCHIES, "unified")]
    return [d for r in roots if os.path.exists(d := os.path.join(r, base.lstrip("/")))]


@pytest.fixture
def sandbox():
    """(manager factory, base path, process list); everything is torn down whatever happens."""
    assert os.geteuid() == 0
    base = f"/pycrid-test-{secrets.token_hex(4)}"
    procs: list[subprocess.Popen] = []
    managers: list = []
    try:
        yield managers, base, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for m in managers:
            m.kill_all(base)
            m.remove(base)
        assert leftovers(base) == []


def managed(sandbox, manager):
    """(manager, base, procs) with ``manager`` kept for the sandbox's clean-up."""
    managers, base, procs = sandbox
    managers.append(manager)
    return manager, base, procs


@pytest.fixture
def v1(sandbox):
    if detect(ROOT) != "v1":
        pytest.skip("this node's cgroups are not v1")
    return managed(sandbox, V1Manager(ROOT))


def test_v1_lifecycle(v1):
    m, base, procs = v1
    child = f"{base}/c1"
    m.create(child, Resources(
        cpu_shares=512, cpu_period=100000, cpu_quota=50000, memory_limit_in_bytes=64 * MiB,
        memory_swap_limit_in_bytes=64 * MiB, pids_limit=50, cpuset_cpus="0", cpuset_mems="0",
    ))
    assert m.exists(child)
    assert read(f"{ROOT}/cpu", child, "cpu.shares") == "512"
    assert read(f"{ROOT}/cpu", child, "cpu.cfs_quota_us") == "50000"
    assert read(f"{ROOT}/cpu", child, "cpu.cfs_period_us") == "100000"
    assert read(f"{ROOT}/memory", child, "memory.limit_in_bytes") == str(64 * MiB)
    assert read(f"{ROOT}/memory", child, "memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert read(f"{ROOT}/pids", child, "pids.max") == "50"
    assert read(f"{ROOT}/cpuset", child, "cpuset.cpus") == "0"
    # The intermediate level got the root's cpus/mems, or nothing could join below it.
    assert read(f"{ROOT}/cpuset", base, "cpuset.cpus") == read(f"{ROOT}/cpuset", "/", "cpuset.cpus")

    p = started(["sh", "-c", WORKER], procs)
    m.add_process(child, p.pid)
    release(p)
    membership = cgroup_of(p.pid)
    for controller in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer",
                       "devices", "name=systemd"):
        assert membership[controller] == child, controller
    assert m.pids(child) == [p.pid]
    assert m.pids(base) == [p.pid]

    time.sleep(0.2)
    stats = m.stats(child)
    assert stats.cpu.usage_ns > 0
    assert stats.cpu.user_ns is not None and stats.cpu.nr_periods is not None
    assert stats.memory.limit_bytes == 64 * MiB
    assert 0 < stats.memory.usage_bytes < 64 * MiB
    assert 0 <= stats.memory.working_set_bytes <= stats.memory.usage_bytes
    assert stats.memory.oom_kills == 0
    assert (stats.pids.current, stats.pids.limit) == (1, 50)
    assert stats.io is not None

    # Live updates in both directions: growing writes memsw first, shrinking memory first;
    # the wrong order would fail with EINVAL.
    m.apply(child, Resources(cpu_shares=1024, cpu_quota=-1, memory_limit_in_bytes=128 * MiB,
                             memory_swap_limit_in_bytes=128 * MiB, pids_limit=100))
    assert read(f"{ROOT}/memory", child, "memory.limit_in_bytes") == str(128 * MiB)
    assert read(f"{ROOT}/memory", child, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read(f"{ROOT}/cpu", child, "cpu.cfs_quota_us") == "-1"
    assert read(f"{ROOT}/pids", child, "pids.max") == "100"
    m.apply(child, Resources(memory_limit_in_bytes=48 * MiB, memory_swap_limit_in_bytes=48 * MiB))
    assert read(f"{ROOT}/memory", child, "memory.limit_in_bytes") == str(48 * MiB)
    assert read(f"{ROOT}/memory", child, "memory.memsw.limit_in_bytes") == str(48 * MiB)

    m.kill_all(child)
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert read(f"{ROOT}/freezer", child, "freezer.state") == "THAWED"
    m.remove(base)
    assert not m.exists(child) and not m.exists(base)
    m.remove(base)  # idempotent


def test_v1_kill_all_reaches_every_descendant(v1):
    m, base, procs = v1
    for name in ("a", "a/b"):
        m.create(f"{base}/{name}", Resources())
    shallow = started(["sleep", "1000"], procs)
    deep = started(["sleep", "1000"], procs)
    m.add_process(f"{base}/a", shallow.pid)
    m.add_process(f"{base}/a/b", deep.pid)
    assert m.pids(base) == sorted([shallow.pid, deep.pid])
    m.kill_all(base, signal.SIGTERM)
    assert shallow.wait(timeout=5) == -signal.SIGTERM
    assert deep.wait(timeout=5) == -signal.SIGTERM
    # rmdir right away: the EBUSY retry covers tasks still on their way out.
    m.remove(base)
    assert not m.exists(base)


def test_v1_oom_kill_is_reported(v1):
    assert_oom_kill_reported(*v1, wait=30)


def assert_oom_kill_reported(m, base, procs, wait):
    """A process past its cgroup's memory limit is OOM-killed, and the kill shows in the events
    and the stats (either version)."""
    child = f"{base}/oom"
    m.create(child, Resources(memory_limit_in_bytes=32 * MiB, memory_swap_limit_in_bytes=32 * MiB))
    hog = "import sys; sys.stdin.readline(); b = bytearray(200 << 20)"
    p = started(["python3", "-S", "-c", hog], procs)
    m.add_process(child, p.pid)
    release(p)
    assert p.wait(timeout=wait) == -signal.SIGKILL
    assert m.oom_events(child) >= 1
    assert m.stats(child).memory.oom_kills >= 1


def test_v1_values_the_kernel_refuses_are_invalid_and_leave_nothing(v1):
    m, base, _ = v1
    m.create(base, Resources())
    with pytest.raises(InvalidArgument, match="cpuset.cpus"):
        m.create(f"{base}/c1", Resources(cpuset_cpus="4000"))  # no such CPU
    assert not m.exists(f"{base}/c1")


@pytest.mark.parametrize("files", [None, HeldFiles(limit=100)], ids=["each-time", "held"])
def test_more_pids_than_a_page_of_cgroup_procs_are_all_listed_and_killed(sandbox, files) -> None:
    # cgroup.procs comes a page of pids per read: ~800 pids fill one.
    if detect(ROOT) != "v1":
        pytest.skip("this node's cgroups are not v1")
    managers, base, procs = sandbox
    m = V1Manager(ROOT, files=files) if files else V1Manager(ROOT)
    managers.append(m)
    child = f"{base}/many"
    m.create(child, Resources())
    p = started(["sh", "-c", "read x; for i in $(seq 900); do sleep 1000 & done; wait"], procs)
    m.add_process(child, p.pid)
    release(p)
    deadline = time.monotonic() + 30
    while len(m.pids(child)) < 901 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(m.pids(child)) == 901
    assert len(read(os.path.join(ROOT, "pids"), child, "cgroup.procs").split()) == 901
    m.kill_all(child)
    m.remove(child)  # every one of them killed, or rmdir would stay busy
    assert not m.exists(child)


@pytest.fixture
def held_v1(sandbox):
    if detect(ROOT) != "v1":
        pytest.skip("this node's cgroups are not v1")
    files = HeldFiles(limit=100)
    yield *managed(sandbox, V1Manager(ROOT, files=files)), files
    files.close()


def test_held_stat_files_follow_the_kernel_and_let_go_of_removed_cgroups(held_v1):
    m, base, procs, files = held_v1
    child = f"{base}/c1"
    m.create(child, Resources(memory_limit_in_bytes=64 * MiB, pids_limit=50))
    assert m.stats(child).memory.limit_bytes == 64 * MiB
    assert files.held() > 10
    m.apply(child, Resources(memory_limit_in_bytes=32 * MiB))
    assert m.stats(child).memory.limit_bytes == 32 * MiB  # read again through the open file

    p = started(["sh", "-c", WORKER], procs)
    m.add_process(child, p.pid)
    release(p)
    assert m.pids(base) == [p.pid]
    assert m.pids(base, skip=[child]) == []
    assert m.stats(child).pids.current == 1
    m.kill_all(child)
    p.wait(timeout=5)

    # Removed: its open files answer ENODEV; the read drops them and finds nothing.
    m.remove(child)
    assert m.stats(child).memory.limit_bytes is None
    # Made again under the same path: the new cgroup's files, not the old ones.
    m.create(child, Resources(memory_limit_in_bytes=16 * MiB))
    assert m.stats(child).memory.limit_bytes == 16 * MiB
    m.remove(base)
    assert m.stats(child).memory.usage_bytes is None
    files.close()
    assert files.held() == 0


def test_a_forked_child_moves_itself_into_every_v1_hierarchy(v1):
    m, base, procs = v1
    child = f"{base}/self"
    m.create(child, Resources(pids_limit=20))
    tasks = open_tasks_files(m, child)
    assert len(tasks) >= len(["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer"])
    joined_r, joined_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            join_self(tasks)
            os.write(joined_w, b"joined")
            os.read(release_r, 1)  # held here until the parent has looked
        finally:
            os._exit(0)
    close_all(tasks)
    try:
        assert os.read(joined_r, 6) == b"joined"
        membership = cgroup_of(pid)
        for controller in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer",
                           "devices", "name=systemd"):
            assert membership[controller] == child, controller
        assert m.pids(child) == [pid]
        assert m.stats(child).pids.current == 1
    finally:
        os.write(release_w, b"x")
        os.waitpid(pid, 0)
        close_all([joined_r, joined_w, release_r, release_w])


@pytest.fixture
def v2(sandbox):
    if not os.path.exists(os.path.join(UNIFIED, "cgroup.kill")) and not os.path.exists(
        os.path.join(UNIFIED, "cgroup.controllers")
    ):
        pytest.skip(f"no cgroup2 mount at {UNIFIED}")
    return managed(sandbox, V2Manager(UNIFIED))


def test_v2_lifecycle_without_controllers(v2):
    """Membership, freeze, kill, stats (cpu.stat and PSI work without controllers) and removal
    against real cgroup2; resource limits need controllers this hybrid mount does not have."""
    m, base, procs = v2
    child = f"{base}/c1"
    subtree_before = read(UNIFIED, "/", "cgroup.subtree_control")
    m.create(child, Resources())
    assert read(UNIFIED, "/", "cgroup.subtree_control") == subtree_before

    p = started(["sh", "-c", WORKER], procs)
    m.add_process(child, p.pid)
    release(p)
    assert cgroup_of(p.pid)[""] == child
    assert m.pids(base) == [p.pid]
    time.sleep(0.2)
    stats = m.stats(child)
    assert stats.cpu.usage_ns > 0
    assert stats.cpu_pressure is not None and stats.memory_pressure is not None
    assert stats.memory.usage_bytes is None  # no memory controller here

    m.kill_all(child, signal.SIGSTOP)  # freeze -> signal -> thaw, and the process stays
    assert read(UNIFIED, child, "cgroup.freeze") == "0"
    m.kill_all(child, signal.SIGCONT)
    assert p.poll() is None
    m.kill_all(base)  # cgroup.kill on the parent reaches the child
    assert p.wait(timeout=5) == -signal.SIGKILL
    m.remove(base)
    assert not m.exists(base)


# The unified hierarchy with its controllers, as on a v2 node (hack/vm runs these in a guest
# booted so): every value set is read back from the file the kernel keeps it in.
@pytest.fixture
def v2_node(sandbox):
    if detect(ROOT) != "v2":
        pytest.skip("this node does not run cgroup v2 (hack/vm/ boots a guest that does)")
    return managed(sandbox, V2Manager(ROOT))


def root_device() -> str:
    """"major:minor" of the disk holding / (for io.max), the whole disk when / is a partition."""
    dev = os.stat("/").st_dev
    name = f"{os.major(dev)}:{os.minor(dev)}"
    partition = f"/sys/dev/block/{name}/partition"
    if os.path.exists(partition):
        with open(f"/sys/dev/block/{name}/../dev") as f:
            return f.read().strip()
    return name


def test_v2_every_resource_is_the_value_the_kernel_reports(v2_node):
    m, base, procs = v2_node
    child = f"{base}/c1"
    disk = root_device()
    m.create(child, Resources(
        cpu_shares=512, cpu_period=100000, cpu_quota=50000, memory_limit_in_bytes=64 * MiB,
        memory_swap_limit_in_bytes=96 * MiB, pids_limit=50, cpuset_cpus="0", cpuset_mems="0",
        hugepage_limits={"2MB": 4 * MiB},
        unified={"memory.oom.group": "1", "io.max": f"{disk} rbps=1048576 wiops=120", "io.weight": "default 300",
                 "memory.high": str(60 * MiB)},
    ))
    assert read(ROOT, child, "cpu.weight") == "59"  # shares 512, as the kubelet converts them
    assert read(ROOT, child, "cpu.max") == "50000 100000"
    assert read(ROOT, child, "memory.max") == str(64 * MiB)
    assert read(ROOT, child, "memory.swap.max") == str(32 * MiB)  # memsw 96 MiB - memory 64 MiB
    assert read(ROOT, child, "memory.high") == str(60 * MiB)
    assert read(ROOT, child, "memory.oom.group") == "1"
    assert read(ROOT, child, "pids.max") == "50"
    assert read(ROOT, child, "cpuset.cpus") == "0"
    assert read(ROOT, child, "cpuset.mems") == "0"
    assert read(ROOT, child, "hugetlb.2MB.max") == str(4 * MiB)
    assert read(ROOT, child, "io.max") == f"{disk} rbps=1048576 wbps=max riops=max wiops=120"
    assert read(ROOT, child, "io.weight") == "default 300"
    # Every parent on the way turned on what the child needs, and no more than it had to.
    for controller in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb"):
        assert controller in read(ROOT, base, "cgroup.subtree_control").split(), controller
    assert read(ROOT, child, "cgroup.subtree_control") == ""

    m.apply(child, Resources(cpu_shares=2, cpu_quota=-1, memory_limit_in_bytes=-1, pids_limit=-1,
                             unified={"memory.oom.group": "0"}))
    assert read(ROOT, child, "cpu.weight") == "1"
    assert read(ROOT, child, "cpu.max") == "max 100000"
    assert read(ROOT, child, "memory.max") == "max"
    assert read(ROOT, child, "memory.swap.max") == "max"
    assert read(ROOT, child, "pids.max") == "max"
    assert read(ROOT, child, "memory.oom.group") == "0"


def test_v2_unified_keys_of_absent_files_are_invalid(v2_node):
    m, base, _ = v2_node
    with pytest.raises(InvalidArgument, match="memory.nonesuch"):
        m.create(f"{base}/c1", Resources(unified={"memory.nonesuch": "1"}))
    assert not m.exists(f"{base}/c1")
    with pytest.raises(InvalidArgument, match="cpu.weight"):
        m.create(f"{base}/c2", Resources(unified={"cpu.weight": "100000"}))  # out of range
    assert not m.exists(f"{base}/c2")


def test_v2_lifecycle_stats_freeze_and_kill(v2_node):
    m, base, procs = v2_node
    child = f"{base}/c1"
    m.create(child, Resources(memory_limit_in_bytes=64 * MiB, pids_limit=50))
    p = started(["sh", "-c", WORKER], procs)
    m.add_process(child, p.pid)
    release(p)
    assert cgroup_of(p.pid)[""] == child
    assert m.pids(base) == [p.pid]
    time.sleep(0.3)
    stats = m.stats(child)
    assert stats.cpu.usage_ns > 0 and stats.cpu.user_ns is not None and stats.cpu.nr_periods is not None
    assert stats.memory.limit_bytes == 64 * MiB
    assert 0 < stats.memory.usage_bytes < 64 * MiB
    assert 0 <= stats.memory.working_set_bytes <= stats.memory.usage_bytes
    assert stats.memory.rss_bytes is not None and stats.memory.cache_bytes is not None
    assert stats.memory.pgfault > 0 and stats.memory.max_usage_bytes >= stats.memory.usage_bytes
    assert stats.memory.oom_kills == 0 and stats.memory.swap_bytes == 0
    assert (stats.pids.current, stats.pids.limit) == (1, 50)
    assert stats.io is not None
    for pressure in (stats.cpu_pressure, stats.memory_pressure, stats.io_pressure):
        assert pressure is not None and pressure.some.total_us >= 0

    m.kill_all(child, signal.SIGSTOP)  # cgroup.freeze, signal, thaw: the process stays
    assert read(ROOT, child, "cgroup.freeze") == "0"
    m.kill_all(child, signal.SIGCONT)
    assert p.poll() is None
    m.kill_all(base)  # cgroup.kill on the parent reaches the child
    assert p.wait(timeout=10) == -signal.SIGKILL
    m.remove(base)
    assert not m.exists(base)


def test_v2_oom_kill_is_reported(v2_node):
    assert_oom_kill_reported(*v2_node, wait=60)


OPENER = """
import os, sys
sys.stdin.readline()
results = []
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDONLY))
        results.append("ok")
    except OSError as e:
        results.append(str(e.errno))
print(" ".join(results), flush=True)
"""


def opened(m, cgroup: str, paths: list[str], procs) -> list[str]:
    """Opens each path from a process in the cgroup: "ok" or the errno."""
    p = subprocess.Popen(["python3", "-S", "-c", OPENER, *paths], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    m.add_process(cgroup, p.pid)
    out, _ = p.communicate("go\n", timeout=60)
    return out.split()


def test_v2_device_program_denies_what_its_rules_do_not_allow(v2_node, tmp_path):
    from runtime.cgroups.devices import DEFAULT_RULES, DeviceRule
    from runtime.linux.bpf import LinuxCgroupDeviceBpf

    m, base, procs = v2_node
    confined, free = f"{base}/confined", f"{base}/free"
    m.create(confined, Resources())
    m.create(free, Resources())
    # A node of a device no rule allows (the kernel's /dev/kmsg, 1:11), made where the test can.
    node = tmp_path / "kmsg"
    os.mknod(node, 0o600 | 0o020000, os.makedev(1, 11))
    m.restrict_devices(confined, DEFAULT_RULES)
    assert len(LinuxCgroupDeviceBpf().device_programs(os.path.join(ROOT, confined.lstrip("/")))) == 1
    assert opened(m, confined, ["/dev/null", str(node)], procs) == ["ok", "1"]  # EPERM
    assert opened(m, free, ["/dev/null", str(node)], procs) == ["ok", "ok"]
    # Restricting again replaces the program (one stays) and a rule for the device allows it.
    m.restrict_devices(confined, (*DEFAULT_RULES, DeviceRule("c", 1, 11, "r")))
    assert len(LinuxCgroupDeviceBpf().device_programs(os.path.join(ROOT, confined.lstrip("/")))) == 1
    assert opened(m, confined, [str(node)], procs) == ["ok"]
