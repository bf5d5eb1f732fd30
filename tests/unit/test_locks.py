"""One lock per object id: calls on one object run one at a time, calls on others side by side,
and locks do not pile up once nobody holds them."""
from __future__ import annotations

import threading
import time

from runtime.locks import KeyedLocks


def test_one_object_at_a_time_and_others_alongside() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    overlap: list[tuple[str, str]] = []
    guard = threading.Lock()

    def work(key: str, name: str) -> None:
        with locks.hold(key):
            with guard:
                overlap.extend((other, name) for other in inside)
                inside.append(name)
            time.sleep(0.05)
            with guard:
                inside.remove(name)

    threads = [threading.Thread(target=work, args=(key, f"{key}{n}")) for key in ("a", "b") for n in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(x[0] != y[0] for x, y in overlap), f"two calls on one object overlapped: {overlap}"
    assert overlap, "calls on different objects never ran side by side"
    assert time.monotonic() - started < 0.05 * 6, "everything ran one at a time"
    assert len(locks) == 0, "locks of objects nobody holds were kept"


def test_the_holder_may_take_its_own_lock_again() -> None:
    locks = KeyedLocks()
    with locks.hold("c"), locks.hold("c"):  # Remove calls Stop on the same container
        assert len(locks) == 1
    assert len(locks) == 0
