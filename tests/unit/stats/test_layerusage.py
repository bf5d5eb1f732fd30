from __future__ import annotations

from runtime.fsusage import TreeUsage
from runtime.stats.layerusage import RecentTreeUsage


class Walks:
    """Stands in for tree_usage: counts walks, answers with the walk number as the size."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def __call__(self, path: str) -> TreeUsage:
        self.count[path] = self.count.get(path, 0) + 1
        return TreeUsage(mountpoint=path, used_bytes=self.count[path], inodes_used=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_layer_is_walked_again_only_once_its_answer_is_old() -> None:
    walks, clock = Walks(), Clock()
    usage = RecentTreeUsage(walks, max_age_s=10, clock=clock)
    assert usage("/a").used_bytes == 1
    clock.now += 9.9
    assert usage("/a").used_bytes == 1
    assert usage("/b").used_bytes == 1  # each layer has its own age
    clock.now += 0.1
    assert usage("/a").used_bytes == 2
    assert walks.count == {"/a": 2, "/b": 1}


def test_answers_nobody_asked_for_are_dropped() -> None:
    walks, clock = Walks(), Clock()
    usage = RecentTreeUsage(walks, max_age_s=10, clock=clock)
    usage("/gone")
    clock.now += 10
    usage("/a")  # prunes: /gone is old
    assert "/gone" not in usage._recent  # noqa: SLF001 - the point of the test
    assert usage("/gone").used_bytes == 2
