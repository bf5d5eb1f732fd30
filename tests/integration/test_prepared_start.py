"""A start prepared at CreateContainer, for real: the pod monitor holds a set-up init that has run
nothing of the image, lets it go on at the start, and drops it (init, the monitor's own child) when
the container is discarded, the pod shuts down or the monitor re-execs; a start that finds no live prepared init
does the whole set-up itself."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runtime.errors import AlreadyExists, InvalidArgument
from runtime.linux import proc
from runtime.process.initspec import Restore
from tests.integration.podharness import PodHarness, log_lines, wait_exit, wait_until


def live(pid: int) -> list[str]:
    """The live descendants of ``pid``, as "comm" (zombies left out: the monitor reaps them)."""
    return sorted(p.comm for p in proc.descendants(pid) if p.state != "Z")


def held_in_its_root(pid: int) -> bool:
    """The process is still our Python, not the image's command: it has not exec'd."""
    return os.readlink(f"/proc/{pid}/exe") == os.readlink(f"/proc/{os.getpid()}/exe")


def test_a_prepared_init_runs_nothing_until_its_start(pod: PodHarness) -> None:
    spec = pod.spec("held", ("sh", "-c", "echo running"))
    pid = pod.monitor.prepare(spec, 30)
    assert held_in_its_root(pid)
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.path.isdir(f"/proc/{pid}/root/proc/1"), "init mounted its rootfs (and its /proc) before it is held"
    time.sleep(0.2)
    assert not os.path.exists(spec.exit_file) and log_lines(spec) == []
    assert pod.monitor.ping()["containers"] == {}
    assert pod.monitor.start(spec, 30).pid == pid
    assert wait_exit(spec)["exit_code"] == 0
    assert log_lines(spec) == [("stdout", "F", "running")]


def test_a_prepared_terminal_container_gets_its_terminal_at_the_start(pod: PodHarness) -> None:
    spec = pod.spec("tty", ("sh", "-c", "test -t 1 && echo on-a-tty"), tty=True)
    pid = pod.monitor.prepare(spec, 30)
    assert pod.monitor.start(spec, 30).pid == pid
    assert wait_exit(spec)["exit_code"] == 0
    assert wait_until(lambda: [line[2].strip() for line in log_lines(spec)] == ["on-a-tty"])


def test_preparing_twice_is_refused(pod: PodHarness) -> None:
    spec = pod.spec("twice", ("true",))
    pod.monitor.prepare(spec, 30)
    with pytest.raises(AlreadyExists, match="twice.*prepared"):
        pod.monitor.prepare(spec, 30)
    pod.monitor.start(spec, 30)
    assert wait_exit(spec)["exit_code"] == 0


def test_a_discarded_start_leaves_nothing_and_a_later_start_sets_up_anew(pod: PodHarness) -> None:
    spec = pod.spec("dropped", ("sh", "-c", "echo second"))
    pid = pod.monitor.prepare(spec, 30)
    assert live(pod.monitor_pid) == ["pycrid-init"]
    stat = proc.read_stat(pid)
    assert stat is not None and stat.comm == "pycrid-init" and stat.ppid == pod.monitor_pid
    pod.monitor.discard("dropped")
    assert wait_until(lambda: live(pod.monitor_pid) == []), live(pod.monitor_pid)
    pod.monitor.discard("dropped")  # nothing held: nothing to do
    again = pod.monitor.start(spec, 30).pid
    assert again != pid
    assert wait_exit(spec)["exit_code"] == 0 and log_lines(spec) == [("stdout", "F", "second")]


def test_a_start_whose_prepared_init_died_sets_up_anew(pod: PodHarness) -> None:
    spec = pod.spec("orphan", ("sh", "-c", "echo fresh"))
    pid = pod.monitor.prepare(spec, 30)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: live(pod.monitor_pid) == []), live(pod.monitor_pid)
    assert pod.monitor.start(spec, 30).pid != pid
    assert wait_exit(spec)["exit_code"] == 0 and log_lines(spec) == [("stdout", "F", "fresh")]


def test_a_prepare_that_fails_reports_why_and_leaves_nothing(pod: PodHarness, tmp_path: Path) -> None:
    spec = pod.spec("bad", ("true",), seccomp="Localhost", seccomp_profile=str(tmp_path / "missing.json"))
    with pytest.raises(InvalidArgument, match="missing.json"):
        pod.monitor.prepare(spec, 30)
    assert wait_until(lambda: live(pod.monitor_pid) == []), live(pod.monitor_pid)


def test_shutdown_and_reexec_drop_prepared_inits(pod: PodHarness) -> None:
    first = pod.spec("first", ("sh", "-c", "echo after-upgrade"))
    pod.monitor.prepare(first, 30)
    pod.monitor.upgrade()
    assert wait_until(lambda: live(pod.monitor_pid) == []), live(pod.monitor_pid)
    pod.monitor.start(first, 30)  # the new code sets it up from its spec
    assert wait_exit(first)["exit_code"] == 0 and log_lines(first) == [("stdout", "F", "after-upgrade")]
    pod.monitor.prepare(pod.spec("second", ("true",)), 30)
    # the harness's close() shuts the monitor down and asserts it exits, leaving no zombie


def test_a_restore_from_a_checkpoint_is_never_held(pod: PodHarness, tmp_path: Path) -> None:
    """CRIU restores a process that already ran: there is no set-up to hold, only a start."""
    spec = pod.spec("restored", ("true",), restore=Restore("/usr/sbin/criu", str(tmp_path / "images")))
    with pytest.raises(InvalidArgument, match="restored.*not prepared"):
        pod.monitor.prepare(spec, 30)
    assert wait_until(lambda: live(pod.monitor_pid) == []), live(pod.monitor_pid)


def test_a_killed_monitor_strands_no_prepared_init(pod: PodHarness) -> None:
    """The monitor's death (SIGKILL) ends what it held: init sees its sync socket close and exits;
    the fork server, its subreaper now, reaps it."""
    pid = pod.monitor.prepare(pod.spec("orphaned", ("true",)), 30)
    os.kill(pod.monitor_pid, signal.SIGKILL)
    assert wait_until(lambda: proc.read_stat(pid) is None, timeout=10), proc.read_stat(pid)
