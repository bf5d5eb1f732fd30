"""GetContainerEvents: the runtime's lifecycle events (runtime/events) as ContainerEventResponses.

Each response carries the pod's status and the status of every one of its containers as they were
when the event happened, as containerd sends them: the kubelet's EventedPLEG takes the pod's whole
state from the event. A stream ends when its client goes (cri/instrument.py cancels it), when the
agent stops, or, with RESOURCE_EXHAUSTED, when its client fell too far behind (the kubelet then
relists and subscribes again).
"""
from __future__ import annotations

from cri.api.v1 import api_pb2 as pb
from cri.containers import container_status
from cri.sandboxes import sandbox_status
from runtime.events.hub import EventHub, Subscription
from runtime.events.model import Event, EventKind

_KIND = {EventKind.CREATED: pb.CONTAINER_CREATED_EVENT, EventKind.STARTED: pb.CONTAINER_STARTED_EVENT,
         EventKind.STOPPED: pb.CONTAINER_STOPPED_EVENT, EventKind.DELETED: pb.CONTAINER_DELETED_EVENT}


class EventRpcs:
    events: EventHub

    def GetContainerEvents(self, request: pb.GetEventsRequest) -> EventStream:
        return EventStream(self.events.subscribe())


class EventStream:
    """One subscriber's responses; cancel() ends it from any thread (the RPC ended)."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> pb.ContainerEventResponse:
        event = self._subscription.get()
        if event is None:
            raise StopIteration
        return event_response(event)

    def cancel(self) -> None:
        self._subscription.close()


def event_response(e: Event) -> pb.ContainerEventResponse:
    pod = e.pod
    return pb.ContainerEventResponse(
        container_id=e.subject_id, container_event_type=_KIND[e.kind], created_at=e.at,
        pod_sandbox_status=sandbox_status(pod.sandbox) if pod.sandbox else None,
        containers_statuses=[container_status(c) for c in pod.containers])
