"""GetContainerEvents over a real gRPC socket: events as ContainerEventResponses with the pod's
status and every container status attached (what the kubelet's EventedPLEG reads), a stream that
ends when its client cancels or the agent stops, and one dropped with RESOURCE_EXHAUSTED when its
client falls behind."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc
from cri.events import EventRpcs, event_response
from runtime.container.model import ContainerConfig
from runtime.container.record import Container
from runtime.events.hub import EventHub
from runtime.events.model import Event, EventKind, PodView
from runtime.process.initspec import InitSpec
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.record import Sandbox

POD = "p" * 64
_PATHS = SandboxPaths(dir="/run/pycrid/sandboxes/p", netns="/run/pycrid/sandboxes/p/netns", ipcns="", utsns="",
                      pidns="", hosts="", resolv_conf="", hostname="", shm="")
SANDBOX = Sandbox(POD, SandboxConfig(name="web", uid="uid-web", namespace="shop"), _PATHS, created_at=10,
                  ips=("10.88.0.7",))


def container(cid: str, name: str, **kw: object) -> Container:
    spec = InitSpec(id=cid, args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")
    return replace(Container(cid, POD, ContainerConfig(name=name, attempt=1, image="busybox:1"), image_id="sha256:1",
                             image_ref="busybox:1", spec=spec, cgroup="/pycrid/" + cid, created_at=20), **kw)


APP = container("a" * 64, "app", started_at=30)
DONE = container("b" * 64, "init", started_at=25, finished_at=28, exit_code=3, reason="Error")


class Events(EventRpcs):
    def __init__(self, hub: EventHub) -> None:
        self.events = hub


def test_a_container_event_carries_the_pod_and_all_its_containers() -> None:
    response = event_response(Event(EventKind.STOPPED, DONE.id, 123, PodView(SANDBOX, (DONE, APP))))
    assert (response.container_id, response.container_event_type, response.created_at) == \
        (DONE.id, pb.CONTAINER_STOPPED_EVENT, 123)
    status = response.pod_sandbox_status
    assert (status.id, status.metadata.uid, status.metadata.name, status.metadata.namespace) == \
        (POD, "uid-web", "web", "shop")
    assert (status.state, status.network.ip) == (pb.SANDBOX_READY, "10.88.0.7")
    assert [(c.id, c.metadata.name, c.state, c.exit_code) for c in response.containers_statuses] == [
        (DONE.id, "init", pb.CONTAINER_EXITED, 3), (APP.id, "app", pb.CONTAINER_RUNNING, 0)]


@pytest.mark.parametrize(("kind", "wire"), [(EventKind.CREATED, pb.CONTAINER_CREATED_EVENT),
                                            (EventKind.STARTED, pb.CONTAINER_STARTED_EVENT),
                                            (EventKind.STOPPED, pb.CONTAINER_STOPPED_EVENT),
                                            (EventKind.DELETED, pb.CONTAINER_DELETED_EVENT)])
def test_each_kind_is_its_cri_event_type(kind: EventKind, wire: int) -> None:
    assert event_response(Event(kind, POD, 1, PodView(SANDBOX, ()))).container_event_type == wire


def test_an_event_of_a_pod_already_gone_has_no_pod_status() -> None:
    response = event_response(Event(EventKind.DELETED, POD, 1, PodView(None, ())))
    assert not response.HasField("pod_sandbox_status") and not response.containers_statuses


def stub_over(serve, hub: EventHub) -> api_pb2_grpc.RuntimeServiceStub:
    return api_pb2_grpc.RuntimeServiceStub(serve(Events(hub), object()))


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_stream_delivers_events_as_they_are_published(serve) -> None:
    hub = EventHub(lambda sandbox_id: PodView(SANDBOX, (APP,)))
    stream = stub_over(serve, hub).GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.CREATED, APP.id, POD)  # before the call reached the server: held for it
    first = next(stream)
    hub.publish(EventKind.STARTED, APP.id, POD)
    second = next(stream)
    assert [(e.container_id, e.container_event_type) for e in (first, second)] == [
        (APP.id, pb.CONTAINER_CREATED_EVENT), (APP.id, pb.CONTAINER_STARTED_EVENT)]
    assert second.created_at > first.created_at
    assert [c.id for c in second.containers_statuses] == [APP.id]
    stream.cancel()


def test_a_cancelled_stream_gives_up_its_subscription(serve) -> None:
    hub = EventHub(lambda sandbox_id: PodView(SANDBOX, ()), max_subscribers=1)
    stub = stub_over(serve, hub)
    stream = stub.GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.CREATED, POD, POD)
    next(stream)  # subscribed
    stream.cancel()
    # The handler thread was waiting for an event: the cancel wakes it, and the place is free.
    assert wait_until(lambda: not hub._subscribers), "the cancelled stream still holds its subscription"
    again = stub.GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.STARTED, POD, POD)
    assert next(again).container_event_type == pb.CONTAINER_STARTED_EVENT
    again.cancel()


def test_streams_end_cleanly_when_the_agent_stops(serve) -> None:
    hub = EventHub(lambda sandbox_id: PodView(SANDBOX, ()))
    stream = stub_over(serve, hub).GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.CREATED, POD, POD)
    next(stream)
    threading.Timer(0.1, hub.close).start()
    assert list(stream) == []  # ends with OK, not an error
    assert stream.code() == grpc.StatusCode.OK


def test_a_client_that_falls_behind_is_told_so(serve) -> None:
    hub = EventHub(lambda sandbox_id: PodView(SANDBOX, ()), queue_limit=5)
    stream = stub_over(serve, hub).GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.CREATED, POD, POD)
    next(stream)
    # The server sends what it can into the transport's buffers; the queue behind them still
    # overflows when publishing outpaces the reader enough.
    for i in range(20000):
        hub.publish(EventKind.STARTED, POD, POD)
        if not hub._subscribers:
            break
    assert not hub._subscribers, "the lagging stream was never dropped"
    with pytest.raises(grpc.RpcError) as err:
        for _ in stream:
            pass
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fell 5 events behind" in err.value.details()


def test_too_many_streams_are_refused(serve) -> None:
    hub = EventHub(lambda sandbox_id: PodView(SANDBOX, ()), max_subscribers=1)
    stub = stub_over(serve, hub)
    first = stub.GetContainerEvents(pb.GetEventsRequest())
    hub.publish(EventKind.CREATED, POD, POD)
    next(first)
    with pytest.raises(grpc.RpcError) as err:
        next(stub.GetContainerEvents(pb.GetEventsRequest()))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
