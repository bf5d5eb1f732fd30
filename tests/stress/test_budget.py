"""The budget's hold point: what lets a kill land at its seeded call however fast the calls go."""
from __future__ import annotations

import threading

from tests.stress.budget import Budget


def _take_all(budget: Budget, into: list[int]) -> threading.Thread:
    def work() -> None:
        while (n := budget.take()) is not None:
            into.append(n)
    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def test_a_hold_stops_the_numbers_at_its_point_until_released() -> None:
    budget, taken = Budget(10), []
    budget.hold_at(4)
    worker = _take_all(budget, taken)
    worker.join(0.2)
    assert worker.is_alive() and taken == [0, 1, 2, 3] and budget.held()
    budget.release()
    worker.join(5)
    assert not worker.is_alive() and taken == list(range(10))


def test_a_hold_past_the_end_counts_as_reached_once_all_are_handed_out() -> None:
    budget, taken = Budget(3), []
    budget.hold_at(7)
    _take_all(budget, taken).join(5)
    assert taken == [0, 1, 2] and budget.held()


def test_close_wakes_a_worker_waiting_at_a_hold() -> None:
    budget, taken = Budget(10), []
    budget.hold_at(2)
    worker = _take_all(budget, taken)
    worker.join(0.2)
    assert worker.is_alive()
    budget.close()
    worker.join(5)
    assert not worker.is_alive() and taken == [0, 1] and budget.take() is None


def test_no_hold_is_never_held() -> None:
    budget = Budget(5)
    assert not budget.held() and budget.take() == 0
