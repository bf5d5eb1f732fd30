from __future__ import annotations

from pathlib import Path

from runtime.stats.procfs import counts_if_alone, process_counts, thread_count
from runtime.stats.sample import Processes
from tests.unit.stats.builders import tree


def test_thread_count_survives_comm_with_spaces_and_parentheses() -> None:
    stat = "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 9 0 100 0 0\n"
    assert thread_count(stat) == 9


def test_counts_processes_threads_fds_and_sockets() -> None:
    proc = str(tree("v1") / "proc")
    # 4242: 2 threads, 6 fds (2 sockets); 4243: 1 thread, 4 fds (1 socket).
    assert process_counts([4242, 4243], proc) == Processes(count=2, threads=3, fds=10, sockets=3)


def test_a_pid_that_exited_meanwhile_is_left_out(tmp_path: Path) -> None:
    assert process_counts([4242, 999999], str(tree("v1") / "proc")).count == 1
    assert process_counts([], str(tmp_path)) == Processes()


def test_a_process_without_an_fd_dir_still_counts(tmp_path: Path) -> None:
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "stat").write_text("5 (zombie) Z 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n")
    assert process_counts([5], str(tmp_path)) == Processes(count=1, threads=1)


def test_a_process_whose_threads_are_all_of_its_cgroups_tasks_is_counted_alone() -> None:
    proc = str(tree("v1") / "proc")
    # 4343: 1 thread, 3 fds (no socket); 4242: 2 threads.
    assert counts_if_alone(4343, 1, proc) == process_counts([4343], proc)
    assert counts_if_alone(4242, 2, proc) == process_counts([4242], proc)


def test_more_tasks_than_the_process_has_threads_means_someone_else_is_there() -> None:
    proc = str(tree("v1") / "proc")
    assert counts_if_alone(4242, 3, proc) is None  # 4243 is in its cgroup too
    assert counts_if_alone(4343, 0, proc) is None
    assert counts_if_alone(999999, 1, proc) is None  # gone
