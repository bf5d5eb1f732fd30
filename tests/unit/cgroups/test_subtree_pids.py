"""subtree_pids on plain directories standing in for cgroups: descendants are found, skipped
subtrees are left out, and a directory is listed only when it may hold cgroups not skipped."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.cgroups.cgroupfs import subtree_pids


def cgroup(path: Path, *pids: int) -> str:
    path.mkdir(parents=True)
    (path / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))
    return str(path)


@pytest.fixture
def pod(tmp_path: Path) -> Path:
    cgroup(tmp_path / "pod", 10)  # pause
    cgroup(tmp_path / "pod" / "c1", 11, 12)
    cgroup(tmp_path / "pod" / "c2", 13)
    cgroup(tmp_path / "pod" / "c2" / "nested", 14)
    return tmp_path / "pod"


def test_every_descendant_is_read(pod: Path) -> None:
    assert subtree_pids(str(pod)) == [10, 11, 12, 13, 14]


def test_skipped_subtrees_are_left_out(pod: Path) -> None:
    assert subtree_pids(str(pod), skip={str(pod / "c2")}) == [10, 11, 12]
    assert subtree_pids(str(pod), skip={str(pod / "c1"), str(pod / "c2")}) == [10]


def test_no_listing_when_every_child_is_skipped(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_listing(path: str) -> None:
        raise AssertionError(f"listed {path}")

    monkeypatch.setattr(os, "scandir", no_listing)
    assert subtree_pids(str(pod), skip={str(pod / "c1"), str(pod / "c2")}) == [10]
    assert subtree_pids(str(pod / "c1")) == [11, 12]  # a leaf


def test_a_child_not_skipped_is_found_even_next_to_skipped_ones(pod: Path) -> None:
    cgroup(pod / "other", 20)
    assert subtree_pids(str(pod), skip={str(pod / "c1"), str(pod / "c2")}) == [10, 20]


def test_a_skipped_child_that_is_gone_does_not_hide_the_others(pod: Path) -> None:
    (pod / "c1" / "cgroup.procs").unlink()
    (pod / "c1").rmdir()
    assert subtree_pids(str(pod), skip={str(pod / "c1"), str(pod / "c2")}) == [10]
    cgroup(pod / "c3", 30)
    assert subtree_pids(str(pod), skip={str(pod / "c1"), str(pod / "c2")}) == [10, 30]


def test_missing_is_empty(tmp_path: Path) -> None:
    assert subtree_pids(str(tmp_path / "gone")) == []
