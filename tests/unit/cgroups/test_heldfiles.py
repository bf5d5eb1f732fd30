"""HeldFiles on plain files: reads follow the file's content, missing files are None, and the
descriptors it holds stay within its limit and go away when unused. Its behaviour on removed
cgroups (ENODEV) is tested on the real cgroupfs: tests/integration/test_cgroups.py."""
from __future__ import annotations

import os
from pathlib import Path

from runtime.cgroups.heldfiles import HeldFiles


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reads_follow_the_content_and_keep_the_file_open(tmp_path: Path) -> None:
    f = tmp_path / "memory.usage_in_bytes"
    f.write_text("100\n")
    files = HeldFiles(limit=10)
    assert files.read_many([str(f)])[0] == "100\n"
    f.write_text("4096\n")  # rewritten in place, as the kernel regenerates a cgroup file
    assert files.read_many([str(f)])[0] == "4096\n"
    assert files.held() == 1
    files.close()
    assert files.held() == 0


def test_a_missing_file_is_none_and_not_held(tmp_path: Path) -> None:
    files = HeldFiles(limit=10)
    assert files.read_many([str(tmp_path / "nope")])[0] is None
    assert files.held() == 0


def test_read_many_answers_in_order_and_holds_what_exists(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1\n")
    (tmp_path / "b").write_text("2\n")
    files = HeldFiles(limit=10)
    paths = [str(tmp_path / "a"), str(tmp_path / "nope"), str(tmp_path / "b")]
    assert files.read_many(paths) == ["1\n", None, "2\n"]
    (tmp_path / "b").write_text("3\n")
    assert files.read_many(paths) == ["1\n", None, "3\n"]
    assert files.held() == 2
    files.close()


def test_large_files_are_read_whole(tmp_path: Path) -> None:
    f = tmp_path / "big"
    text = "".join(f"key{i} {i}\n" for i in range(20000))  # > 64 KiB
    f.write_text(text)
    files = HeldFiles(limit=10)
    assert files.read_many([str(f)])[0] == text
    assert files.read_many([str(f)])[0] == text


def test_past_the_limit_files_are_read_but_not_held(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        (tmp_path / str(i)).write_text(f"{i}\n")
        paths.append(str(tmp_path / str(i)))
    files = HeldFiles(limit=3)
    assert files.read_many(paths) == [f"{i}\n" for i in range(5)]
    assert files.held() == 3
    files.close()


def test_files_not_read_between_two_sweeps_are_closed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a\n")
    b.write_text("b\n")
    clock = Clock()
    files = HeldFiles(limit=10, idle_s=60, clock=clock)
    files.read_many([str(a)])[0]
    files.read_many([str(b)])[0]
    clock.now = 61
    files.read_many([str(a)])[0]  # sweeps: both were read since the start
    assert files.held() == 2
    clock.now = 122
    files.read_many([str(a)])[0]  # sweeps: b was not read in the last period
    assert files.held() == 1
    files.close()


def test_the_descriptors_it_holds_are_not_inherited(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("1\n")
    files = HeldFiles(limit=10)
    files.read_many([str(f)])[0]
    held = [int(fd) for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == str(f)]
    assert held and all(not os.get_inheritable(fd) for fd in held)
    files.close()
