import os

import pytest

from runtime.linux.proc import (
    ProcStat,
    children,
    containing_mount,
    descendants,
    is_alive,
    open_fds,
    parse_mount_points,
    parse_stat,
    parse_status,
    read_stat,
    start_time,
    zombies_under,
)


def stat_line(pid, comm, state, ppid, start):
    # Fields 4..52 after "pid (comm) state"; field 22 (start time) is the 20th after state.
    rest = [str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 30
    return f"{pid} ({comm}) {state} {' '.join(rest)}\n"


@pytest.mark.parametrize("comm", ["sh", "my prog", "a) b (c", ")", "(x)) S 1 2"])
def test_parse_stat_handles_hostile_comm(comm):
    assert parse_stat(stat_line(42, comm, "S", 7, 123456)) == ProcStat(42, comm, "S", 7, 123456)


def test_parse_stat_real_process():
    with open(f"/proc/{os.getpid()}/stat") as f:
        stat = parse_stat(f.read())
    assert stat.pid == os.getpid() and stat.ppid == os.getppid() and stat.start_time > 0


@pytest.mark.parametrize("text", ["", "12 (x) S 1", "garbage"])
def test_parse_stat_rejects_malformed(text):
    with pytest.raises(ValueError, match="malformed"):
        parse_stat(text)


def test_parse_status():
    status = parse_status("Name:\tbash\nState:\tZ (zombie)\nCapBnd:\t000001fffeffffff\n")
    assert status == {"Name": "bash", "State": "Z (zombie)", "CapBnd": "000001fffeffffff"}


@pytest.fixture
def proc_tree(tmp_path):
    """1 -> 10 -> (11 zombie, 12 -> 13 zombie); 20 is unrelated."""
    for pid, comm, state, ppid in [
        (1, "init", "S", 0),
        (10, "monitor", "S", 1),
        (11, "done", "Z", 10),
        (12, "sh", "S", 10),
        (13, "gone (soon)", "Z", 12),
        (20, "other", "R", 1),
    ]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, comm, state, ppid, 1000 + pid))
    (tmp_path / "self").mkdir()  # non-numeric entries are not processes
    fd_dir = tmp_path / "12" / "fd"
    fd_dir.mkdir()
    for fd, target in [(0, "/dev/null"), (1, "pipe:[123]"), (7, "/var/lib/secret")]:
        os.symlink(target, fd_dir / str(fd))
    return str(tmp_path)


def test_read_stat_and_start_time(proc_tree):
    assert read_stat(12, proc_tree).comm == "sh"
    assert start_time(13, proc_tree) == 1013
    assert read_stat(99, proc_tree) is None and start_time(99, proc_tree) is None


@pytest.mark.parametrize("comm", ["sh", "my prog", "a) b (c", ")", "(x)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17"])
def test_start_time_parses_past_a_hostile_comm_as_read_stat_does(tmp_path, comm):
    """start_time has a parse of its own (cheaper for a pod monitor than a ProcStat)."""
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(stat_line(42, comm, "S", 7, 123456))
    assert start_time(42, str(tmp_path)) == read_stat(42, str(tmp_path)).start_time == 123456


def test_start_time_of_a_real_process_is_read_stat_s():
    assert start_time(os.getpid()) == read_stat(os.getpid()).start_time > 0


def test_start_time_of_self_is_the_caller_s_own():
    assert start_time("self") == start_time(os.getpid()) > 0


@pytest.mark.parametrize("text", ["", "12 (x) S 1", "garbage"])
def test_start_time_rejects_a_malformed_line(tmp_path, text):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(text)
    with pytest.raises(ValueError, match="malformed"):
        start_time(42, str(tmp_path))


def test_is_alive_needs_matching_start_time_and_not_zombie(proc_tree):
    assert is_alive(12, 1012, proc_tree)
    assert not is_alive(12, 999, proc_tree)  # pid reused by another process
    assert not is_alive(11, 1011, proc_tree)  # exited, not reaped
    assert not is_alive(99, 1099, proc_tree)


def test_children_descendants_zombies(proc_tree):
    assert children(10, proc_tree) == (11, 12)
    assert sorted(s.pid for s in descendants(10, proc_tree)) == [11, 12, 13]
    assert sorted(zombies_under(10, proc_tree)) == [11, 13]
    assert zombies_under(12, proc_tree) == (13,)
    assert zombies_under(20, proc_tree) == ()


def test_open_fds(proc_tree):
    assert open_fds(12, proc_tree) == {0: "/dev/null", 1: "pipe:[123]", 7: "/var/lib/secret"}
    assert open_fds(99, proc_tree) == {}


def test_open_fds_of_self_sees_a_new_fd():
    r, w = os.pipe()
    try:
        assert open_fds("self")[r].startswith("pipe:")
    finally:
        os.close(r)
        os.close(w)


def test_parse_mount_points_unescapes():
    text = (
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "40 22 0:35 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
    )
    assert parse_mount_points(text) == ("/proc", "/mnt/with space")


@pytest.mark.parametrize("path, want", [
    ("/run/pycrid/c/rootfs", "/run"),
    ("/run", "/run"),
    ("/running/x", "/"),  # a prefix of the text, not of the path's components
    ("/var/lib/kubelet/pods/x", "/var/lib/kubelet"),
])
def test_containing_mount_is_the_deepest_whole_component_prefix(path, want):
    assert containing_mount(path, ("/", "/run", "/var/lib/kubelet", "/var")) == want
