"""Lifecycle events as the runtime publishes them; cri/events.py turns them into the CRI's
ContainerEventResponse.

Each event carries the pod as it was when the event was published (its record and every one of its
containers' records), as containerd attaches the pod's status and all its container statuses: the
kubelet's EventedPLEG builds the pod's status from the event alone. Records are frozen, so holding
them costs references, not copies.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from runtime.container.record import Container
from runtime.sandbox.record import Sandbox
from runtime.store.records import RecordStore


class EventKind(Enum):
    CREATED = 0
    STARTED = 1
    STOPPED = 2
    DELETED = 3


@dataclass(frozen=True)
class PodView:
    sandbox: Sandbox | None  # None once the sandbox's record is gone
    containers: tuple[Container, ...]  # oldest first


@dataclass(frozen=True)
class Event:
    kind: EventKind
    # A container's id, or the sandbox's own for the sandbox's lifecycle (as containerd sends them).
    subject_id: str
    at: int  # ns since the epoch
    pod: PodView


class Publisher(Protocol):
    """Where the managers report what changed (EventHub; RecordedEvents in testing.py). Called
    after the record shows the change; never raises and never waits for a subscriber."""

    def publish(self, kind: EventKind, subject_id: str, sandbox_id: str) -> None: ...


PodLookup = Callable[[str], PodView]


def pods_in(sandboxes: RecordStore[Sandbox], containers: RecordStore[Container]) -> PodLookup:
    """The pod of a sandbox id as the stores hold it now."""
    def lookup(sandbox_id: str) -> PodView:
        members = sorted((c for c in containers.all() if c.sandbox_id == sandbox_id), key=lambda c: c.created_at)
        return PodView(sandboxes.find(sandbox_id), tuple(members))
    return lookup
