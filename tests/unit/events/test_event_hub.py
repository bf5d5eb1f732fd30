"""The event hub: every subscriber sees every event in one order, with the pod as it was; a reader
that falls behind is dropped alone and never holds back a publisher; events published while nobody
listens wait (bounded in number and time) for the next subscriber; streams end on close."""
from __future__ import annotations

import threading
import time

import pytest

from runtime.errors import ResourceExhausted, Unavailable
from runtime.events.hub import EventHub
from runtime.events.model import Event, EventKind, PodView

CREATED, STARTED, STOPPED, DELETED = EventKind.CREATED, EventKind.STARTED, EventKind.STOPPED, EventKind.DELETED


class Pods:
    """A pod lookup whose answer the test changes between events (the pod's containers)."""

    def __init__(self) -> None:
        self.containers: dict[str, tuple] = {}
        self.fail = False

    def __call__(self, sandbox_id: str) -> PodView:
        if self.fail:
            raise OSError("store gone")
        return PodView(None, self.containers.get(sandbox_id, ()))


class Clock:
    def __init__(self) -> None:
        self.now = 1000
        self.monotonic = 0.0

    def __call__(self) -> int:
        return self.now


def drain(subscription, n: int) -> list[Event]:
    events = []
    for _ in range(n):
        event = subscription.get(timeout=2)
        assert event is not None, f"only {len(events)} of {n} events came"
        events.append(event)
    return events


def test_every_subscriber_sees_every_event_in_publish_order_with_its_pod() -> None:
    pods, clock = Pods(), Clock()
    hub = EventHub(pods, clock=clock)
    first, second = hub.subscribe(), hub.subscribe()
    pods.containers["s1"] = ("c1",)
    hub.publish(CREATED, "c1", "s1")
    pods.containers["s1"] = ("c1", "c2")
    hub.publish(STARTED, "c2", "s1")
    hub.publish(STOPPED, "c1", "s1")
    pods.containers["s1"] = ("c2",)
    hub.publish(DELETED, "c1", "s1")
    for subscription in (first, second):
        events = drain(subscription, 4)
        assert [(e.kind, e.subject_id) for e in events] == [(CREATED, "c1"), (STARTED, "c2"), (STOPPED, "c1"),
                                                            (DELETED, "c1")]
        assert [e.pod.containers for e in events] == [("c1",), ("c1", "c2"), ("c1", "c2"), ("c2",)]
        # One clock tick for all four: the times still order them.
        assert [e.at for e in events] == [1000, 1001, 1002, 1003]
        assert subscription.get(timeout=0.01) is None


def test_event_times_follow_the_clock_and_never_go_back() -> None:
    clock = Clock()
    hub = EventHub(Pods(), clock=clock)
    subscription = hub.subscribe()
    clock.now = 5000
    hub.publish(CREATED, "c1", "s1")
    clock.now = 4000  # the wall clock was set back
    hub.publish(STARTED, "c1", "s1")
    assert [e.at for e in drain(subscription, 2)] == [5000, 5001]


def test_concurrent_publishers_give_every_subscriber_the_same_order() -> None:
    hub = EventHub(Pods())
    subscriptions = [hub.subscribe() for _ in range(3)]

    def publish(n: int) -> None:
        for i in range(200):
            hub.publish(CREATED, f"c{n}-{i}", "s1")

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    orders = [[e.subject_id for e in drain(s, 800)] for s in subscriptions]
    assert orders[0] == orders[1] == orders[2]
    for n in range(4):  # each publisher's own events in its order
        assert [x for x in orders[0] if x.startswith(f"c{n}-")] == [f"c{n}-{i}" for i in range(200)]


def test_a_subscriber_that_falls_behind_is_dropped_alone_and_publishing_never_waits_for_it() -> None:
    hub = EventHub(Pods(), queue_limit=10, max_subscribers=2)
    slow, fast = hub.subscribe(), hub.subscribe()
    received: list[Event] = []
    started = time.monotonic()
    for batch in range(10):  # the fast one reads as it goes, the slow one never does
        for i in range(5):
            hub.publish(CREATED, f"c{batch * 5 + i}", "s1")
        received += drain(fast, 5)
    assert time.monotonic() - started < 2  # nobody waited for the slow one
    assert [e.subject_id for e in received] == [f"c{i}" for i in range(50)]
    with pytest.raises(ResourceExhausted, match="fell 10 events behind"):
        slow.get(timeout=0)
    with pytest.raises(ResourceExhausted):  # and stays dropped: its client must resubscribe
        slow.get(timeout=0)
    # Its place is free again (it counted against max_subscribers=2).
    again = hub.subscribe()
    hub.publish(STOPPED, "c0", "s1")
    assert again.get(timeout=1).subject_id == "c0"


def test_a_dropped_subscriber_holds_no_events() -> None:
    hub = EventHub(Pods(), queue_limit=3)
    slow = hub.subscribe()
    for i in range(4):
        hub.publish(CREATED, f"c{i}", "s1")
    assert len(slow._queue) == 0  # freed at once, not when its reader comes back


def test_a_blocked_reader_returns_when_its_client_goes() -> None:
    hub = EventHub(Pods())
    subscription = hub.subscribe()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(subscription.get()))
    reader.start()
    time.sleep(0.05)
    subscription.close()
    reader.join(2)
    assert not reader.is_alive() and got == [None]
    hub.publish(CREATED, "c1", "s1")
    assert subscription.get(timeout=0) is None  # nothing reaches a closed subscription
    subscription.close()  # twice is fine


def test_closing_the_hub_ends_every_stream_after_what_it_queued() -> None:
    hub = EventHub(Pods())
    subscription = hub.subscribe()
    hub.publish(CREATED, "c1", "s1")
    hub.close()
    assert subscription.get(timeout=1).subject_id == "c1"
    assert subscription.get() is None  # ended: returns at once, no timeout needed
    hub.publish(STARTED, "c1", "s1")  # after close: nowhere to go, and no error
    with pytest.raises(Unavailable):
        hub.subscribe()


def test_events_without_a_subscriber_wait_for_the_next_one_only() -> None:
    clock = Clock()
    hub = EventHub(Pods(), monotonic=lambda: clock.monotonic)
    hub.publish(STOPPED, "c1", "s1")  # an exit recovery noticed before the kubelet reconnected
    hub.publish(STOPPED, "c2", "s1")
    first = hub.subscribe()
    second = hub.subscribe()
    assert [e.subject_id for e in drain(first, 2)] == ["c1", "c2"]
    assert second.get(timeout=0.01) is None


def test_held_events_expire_and_are_bounded() -> None:
    clock = Clock()
    hub = EventHub(Pods(), monotonic=lambda: clock.monotonic, queue_limit=3, hold_seconds=300)
    hub.publish(STOPPED, "old", "s1")
    clock.monotonic = 301.0
    for i in range(5):
        hub.publish(STOPPED, f"c{i}", "s1")
    subscription = hub.subscribe()
    assert [e.subject_id for e in drain(subscription, 3)] == ["c2", "c3", "c4"]
    assert subscription.get(timeout=0.01) is None


def test_subscribers_are_bounded() -> None:
    hub = EventHub(Pods(), max_subscribers=2)
    a = hub.subscribe()
    hub.subscribe()
    with pytest.raises(ResourceExhausted, match="2 event streams"):
        hub.subscribe()
    a.close()
    hub.subscribe()


def test_a_failing_pod_lookup_loses_the_event_not_the_change() -> None:
    pods = Pods()
    hub = EventHub(pods)
    subscription = hub.subscribe()
    pods.fail = True
    hub.publish(CREATED, "c1", "s1")  # logged, not raised
    pods.fail = False
    hub.publish(CREATED, "c2", "s1")
    assert subscription.get(timeout=1).subject_id == "c2"
