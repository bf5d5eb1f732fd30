"""The pod monitor for real: what it owns (the pause's PID namespace, the pod's containers, their
logs and exits) and what it survives (a stuck start, a log it cannot write, a re-exec into new
code, the death of the fork server)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runtime.cgroups.manager import new_manager
from runtime.cgroups.resources import Resources
from runtime.errors import DeadlineExceeded, FailedPrecondition, Internal, NotFound
from runtime.linux import proc
from runtime.process.client import start
from runtime.process.execspec import ExecSpec
from runtime.process.initspec import HOST, POD, Namespaces
from runtime.process.monitor import read_dropped
from runtime.process.monitorclient import MonitorFactory
from runtime.sandbox.namespaces import PinSpec
from tests.integration.podharness import PodHarness, log_lines, wait_exit, wait_until

TICKER = ("sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done")


def descendants(pid: int) -> list[str]:
    return [f"{p.pid} {p.comm}" for p in proc.descendants(pid)]


def test_the_set_up_child_reports_the_monitor_s_own_pid_and_start_time(pod: PodHarness, tmp_path: Path) -> None:
    run_dir = tmp_path / "p2"
    run_dir.mkdir()
    pid, started = MonitorFactory(pod.forkserver).spawn("p2", str(run_dir), PinSpec("p2", {}))
    stat = proc.read_stat(pid)
    assert stat is not None and stat.comm == "pycrid-monitor" and stat.start_time == started
    assert stat.ppid == pod.forkserver.ping()  # the fork server's child, not the set-up child's
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: (s := proc.read_stat(pid)) is None or s.state == "Z")


def test_a_set_up_that_fails_is_reported_and_leaves_no_monitor(pod: PodHarness, tmp_path: Path) -> None:
    run_dir = tmp_path / "p3"
    run_dir.mkdir()
    before = {p.pid for p in proc.descendants(pod.forkserver.ping())}
    with pytest.raises(Internal, match="missing"):
        MonitorFactory(pod.forkserver).spawn("p3", str(run_dir), PinSpec("p3", {"uts": str(tmp_path / "missing" / "uts")}))
    assert not (run_dir / "monitor.sock").exists()
    assert wait_until(lambda: {p.pid for p in proc.descendants(pod.forkserver.ping()) if p.state != "Z"} <= before)


def test_a_start_that_overruns_its_deadline_is_killed_with_all_it_started(pod: PodHarness, tmp_path: Path) -> None:
    """init blocks reading a Localhost seccomp profile that is a FIFO: the monitor kills the
    starter's process group (init included) at the deadline and answers DeadlineExceeded."""
    fifo = tmp_path / "profile.json"
    os.mkfifo(fifo)
    spec = pod.spec("stuck", ("true",), seccomp="Localhost", seccomp_profile=str(fifo))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="stuck.*deadline"):
        pod.start(spec, timeout=1.0)
    assert time.monotonic() - started < 3
    assert wait_until(lambda: descendants(pod.monitor_pid) == []), descendants(pod.monitor_pid)
    assert pod.monitor.ping()["containers"] == {}
    assert not os.path.exists(spec.exit_file)


def test_containers_join_the_pause_pid_namespace_held_by_descriptor(pod: PodHarness, tmp_path: Path) -> None:
    root = tmp_path / "pause-root"
    root.mkdir()
    pause_pid, _ = pod.monitor.start_pause({"id": "p1", "root": str(root), "namespaces": {}})
    spec = pod.spec("c1", ("sh", "-c", "cat /proc/1/comm; echo $$"), namespaces=Namespaces(pid=POD))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    (comm, own_pid) = [text for _, _, text in log_lines(spec)]
    assert comm == "pycrid-pause" and int(own_pid) > 1  # PID 1 there is the pod's pause
    # A dead pause makes the namespace unusable; the monitor refuses instead of guessing a pid.
    os.kill(pause_pid, signal.SIGKILL)
    assert wait_until(lambda: not pod.monitor.ping()["pause_alive"])
    with pytest.raises(FailedPrecondition, match="pause process .* is gone"):
        pod.start(pod.spec("c2", ("true",), namespaces=Namespaces(pid=POD)))


def test_the_monitor_forks_the_pause_itself_and_then_forks_in_its_own_pid_namespace_again(
        pod: PodHarness, tmp_path: Path) -> None:
    root = tmp_path / "pause-root"
    root.mkdir()
    pause_pid, started = pod.monitor.start_pause({"id": "p1", "root": str(root), "namespaces": {}})
    stat = proc.read_stat(pause_pid)
    assert stat is not None and stat.ppid == pod.monitor_pid and stat.start_time == started  # no helper between
    assert stat.comm == "pycrid-pause"
    # A container in the node's PID namespace is there, not in the pod's: its shell's $$ is the
    # pid the monitor reports.
    spec = pod.spec("host", ("sh", "-c", "echo $$"), namespaces=Namespaces(pid=HOST))
    pid = pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    assert log_lines(spec) == [("stdout", "F", str(pid))]


def test_a_pause_that_fails_its_set_up_leaves_nothing_and_the_next_one_starts(pod: PodHarness, tmp_path: Path) -> None:
    with pytest.raises(Internal, match="pause set-up failed: FileNotFoundError"):
        pod.monitor.start_pause({"id": "p1", "root": str(tmp_path / "missing"), "namespaces": {}})
    assert wait_until(lambda: descendants(pod.monitor_pid) == []), descendants(pod.monitor_pid)
    assert pod.monitor.ping()["pause"] == 0
    root = tmp_path / "pause-root"
    root.mkdir()
    pause_pid, _ = pod.monitor.start_pause({"id": "p1", "root": str(root), "namespaces": {}})
    assert pod.monitor.ping()["pause"] == pause_pid and pod.monitor.ping()["pause_alive"]


def test_exec_reaches_only_running_containers_of_its_own_pod(pod: PodHarness) -> None:
    spec = ExecSpec(id="not-here", target_pid=os.getpid(), args=("true",), env=(), cwd="/", uid=0, gid=0,
                    groups=(), capabilities=(), ambient_capabilities=(), no_new_privs=True, seccomp="Unconfined",
                    seccomp_profile="", cgroup="")
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with pytest.raises(FailedPrecondition, match="not-here is not running"):
            pod.monitor.exec(spec, (null, null, null))
    finally:
        os.close(null)


def test_a_log_that_cannot_be_written_costs_only_its_lines(pod: PodHarness, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tiny", str(full)], check=True)
    try:
        noisy = pod.spec("noisy", ("sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i padding padding; "
                                   "i=$((i+1)); done; exit 7"), log_path=str(full / "noisy.log"))
        quiet = pod.spec("quiet", ("sh", "-c", "sleep 0.3; echo still here"))
        pod.start(noisy)
        pod.start(quiet)
        assert wait_exit(noisy)["exit_code"] == 7, "a full log disk must not stop or kill the container"
        assert wait_exit(quiet)["exit_code"] == 0
        assert log_lines(quiet) == [("stdout", "F", "still here")]
        lines, size = read_dropped(noisy.state_dir)
        assert lines > 0 and size > lines, (lines, size)
        kept = len(log_lines(noisy))
        assert kept > 0 and kept + lines == 3000
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_a_failed_reopen_keeps_writing_the_old_file(pod: PodHarness, tmp_path: Path) -> None:
    spec = pod.spec("ticker", TICKER)
    pid = pod.start(spec)
    rotated = tmp_path / "rotated.log"
    os.rename(spec.log_path, rotated)
    os.rmdir(os.path.dirname(spec.log_path))  # the directory is gone: a new file cannot be made
    with pytest.raises(Internal, match="still writing to the old file"):
        pod.monitor.reopen_log("ticker")
    size = rotated.stat().st_size
    assert wait_until(lambda: rotated.stat().st_size > size), "the container's output was lost"
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(spec)["signal"] == 9


def test_a_reexec_into_new_code_keeps_pid_containers_logs_and_exits(pod: PodHarness) -> None:
    spec = pod.spec("ticker", TICKER)
    pid = pod.start(spec)
    assert wait_until(lambda: len(log_lines(spec)) >= 2)
    pod.monitor.upgrade()
    assert wait_until(lambda: pod.monitor.ping()["pid"] == pod.monitor_pid, timeout=10)
    cmdline = Path(f"/proc/{pod.monitor_pid}/cmdline").read_bytes().split(b"\0")
    assert b"runtime.process.podmonitor" in cmdline and b"--resume" in cmdline, cmdline
    assert pod.monitor.ping()["containers"] == {"ticker": pid}
    count = len(log_lines(spec))
    assert wait_until(lambda: len(log_lines(spec)) > count + 2), "logs stopped across the re-exec"
    ticks = [int(text.split()[1]) for _, _, text in log_lines(spec)]
    assert ticks == list(range(len(ticks))), "a line was lost or split across the re-exec"
    os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: no default action for SIGTERM
    assert wait_exit(spec)["exit_code"] == 137
    again = pod.spec("after", ("sh", "-c", "echo new code"))
    pod.start(again)
    assert wait_exit(again)["exit_code"] == 0 and log_lines(again) == [("stdout", "F", "new code")]


def test_the_fork_server_dying_costs_the_pod_nothing(pod: PodHarness) -> None:
    spec = pod.spec("ticker", TICKER)
    pid = pod.start(spec)
    server = pod.forkserver.ping()
    os.kill(server, signal.SIGKILL)
    assert wait_until(lambda: (s := proc.read_stat(server)) is None or s.state == "Z")
    count = len(log_lines(spec))
    assert wait_until(lambda: len(log_lines(spec)) > count + 2), "logs stopped with the fork server"
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(spec)["signal"] == 9
    # A new fork server for the harness to shut down; the monitor is PID 1's child now.
    pod.forkserver = start(pod.forkserver.path, str(pod.base / "fork.log"))


def test_init_runs_in_its_cgroup_from_before_its_set_up(pod: PodHarness) -> None:
    """The monitor hands init the cgroup (v1: tasks files it opened; v2: it moves init itself):
    the command sees itself there, and so does every step of the set-up before it."""
    cgroups = new_manager()
    path = f"/pycrid-test-{os.getpid()}/join"
    cgroups.create(path, Resources())
    try:
        spec = pod.spec("joined", ("cat", "/proc/self/cgroup"), cgroup=path)
        pod.start(spec)
        assert wait_exit(spec)["exit_code"] == 0
        lines = [text for _, _, text in log_lines(spec)]
        # v1: every controller's hierarchy (v2's one line, and a hybrid's unified one, name none)
        assert any(line.endswith(path) for line in lines), lines
        assert all(line.endswith(path) for line in lines if line.split(":")[1]), lines
    finally:
        cgroups.remove(path)
        cgroups.remove(os.path.dirname(path))


def test_a_container_whose_cgroup_is_gone_is_not_found(pod: PodHarness) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        pod.start(pod.spec("homeless", ("true",), cgroup=f"/pycrid-test-{os.getpid()}/gone"))
    assert wait_until(lambda: descendants(pod.monitor_pid) == []), descendants(pod.monitor_pid)
