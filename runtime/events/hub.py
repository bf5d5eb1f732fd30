"""The fan-out of lifecycle events to their subscribers (the CRI's GetContainerEvents streams).

Publishing appends to each subscriber's queue under one short lock and never waits for a reader,
so a slow stream holds back neither the runtime nor the other streams. Each queue is bounded: a
subscriber that falls ``queue_limit`` events behind is dropped (its queue freed at once, its next
read raises ResourceExhausted), and the kubelet then relists and subscribes again, which is how it
recovers from any lost stream. Memory is bounded by the queue limit times the subscriber limit.

While nobody subscribes (an agent that has just restarted, before the kubelet reconnects), events
are held for ``hold_seconds`` (at most ``queue_limit`` of them) and handed to the next subscriber,
as containerd's event queue does: the exits that recovery noticed while the agent was down reach
the kubelet.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from runtime.errors import ResourceExhausted, Unavailable
from runtime.events.model import Event, EventKind, PodLookup

QUEUE_LIMIT = 1024
HOLD_SECONDS = 300.0  # containerd's
MAX_SUBSCRIBERS = 8  # each stream holds a gRPC handler thread for as long as it lasts
log = logging.getLogger(__name__)


class Subscription:
    """One subscriber's queue. ``get`` blocks for the next event."""

    def __init__(self, hub: EventHub, backlog: list[Event]) -> None:
        self._hub = hub
        self._queue: collections.deque[Event] = collections.deque(backlog)
        self._ended = False
        self._dropped = False

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the subscription ended (closed, or the hub closed) or when
        ``timeout`` passed first. ResourceExhausted if it was dropped for falling behind."""
        with self._hub.changed:
            self._hub.changed.wait_for(lambda: self._queue or self._ended, timeout)
            if self._dropped:
                raise ResourceExhausted(f"the event stream fell {self._hub.queue_limit} events behind and was "
                                        "dropped; list the pods and containers again and resubscribe")
            return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        """Ends the subscription (its client went away); safe to repeat, from any thread."""
        self._hub.unsubscribe(self)

    # --- called by the hub, under its lock ---------------------------------------------------
    def _offer(self, event: Event) -> bool:
        """Queues ``event``; False (and the queue dropped) when it is full."""
        if len(self._queue) >= self._hub.queue_limit:
            self._queue.clear()
            self._dropped = self._ended = True
            return False
        self._queue.append(event)
        return True

    def _end(self) -> None:
        self._ended = True


class EventHub:
    def __init__(self, pods: PodLookup, clock: Callable[[], int] = time.time_ns,
                 monotonic: Callable[[], float] = time.monotonic, queue_limit: int = QUEUE_LIMIT,
                 hold_seconds: float = HOLD_SECONDS, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self._pods = pods
        self._clock = clock
        self._monotonic = monotonic
        self.queue_limit = queue_limit
        self._hold_seconds = hold_seconds
        self._max_subscribers = max_subscribers
        self.changed = threading.Condition()
        self._subscribers: list[Subscription] = []
        self._held: collections.deque[tuple[float, Event]] = collections.deque()
        self._last = 0
        self._closed = False

    def publish(self, kind: EventKind, subject_id: str, sandbox_id: str) -> None:
        try:
            with self.changed:
                if self._closed:
                    return
                # Under the lock, so that every subscriber sees events in one order, each with the
                # pod as it was then. Strictly increasing: the kubelet keeps a pod status only if it
                # is not older than the one it has, and two events may fall in one clock tick.
                self._last = max(self._clock(), self._last + 1)
                event = Event(kind, subject_id, self._last, self._pods(sandbox_id))
                if not self._subscribers:
                    self._hold(event)
                    return
                for s in [s for s in self._subscribers if not s._offer(event)]:
                    self._subscribers.remove(s)
                    log.warning("an event subscriber fell %d events behind: its stream is dropped", self.queue_limit)
                self.changed.notify_all()
        except Exception:  # noqa: BLE001 - an event lost must never fail the change it reports
            log.exception("publishing the %s event of %s failed", kind.name, subject_id[:12])

    def subscribe(self) -> Subscription:
        with self.changed:
            if self._closed:
                raise Unavailable("pycrid is shutting down")
            if len(self._subscribers) >= self._max_subscribers:
                raise ResourceExhausted(f"{self._max_subscribers} event streams are open already")
            backlog: list[Event] = []
            if not self._subscribers:
                self._expire()
                backlog = [event for _, event in self._held]
                self._held.clear()
            subscription = Subscription(self, backlog)
            self._subscribers.append(subscription)
            log.info("event stream opened (%d open, %d held events handed over)", len(self._subscribers), len(backlog))
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.changed:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)
                log.info("event stream closed (%d open)", len(self._subscribers))
            subscription._queue.clear()  # its reader is gone
            subscription._end()
            self.changed.notify_all()

    def close(self) -> None:
        """The agent stops: every stream ends (cleanly, after what it has queued)."""
        with self.changed:
            self._closed = True
            for s in self._subscribers:
                s._end()
            self._subscribers.clear()
            self._held.clear()
            self.changed.notify_all()

    def _hold(self, event: Event) -> None:
        self._expire()
        if len(self._held) >= self.queue_limit:
            _, lost = self._held.popleft()
            log.warning("no event subscriber: the %s event of %s is discarded", lost.kind.name, lost.subject_id[:12])
        self._held.append((self._monotonic(), event))

    def _expire(self) -> None:
        deadline = self._monotonic() - self._hold_seconds
        expired = 0
        while self._held and self._held[0][0] <= deadline:
            self._held.popleft()
            expired += 1
        if expired:
            log.warning("no event subscriber for %.0fs: %d events discarded", self._hold_seconds, expired)
