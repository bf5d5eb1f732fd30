"""cri.rpc.server.Server through grpcio's own client: replies, statuses, big messages both ways,
streaming and its cancellation, deadlines, concurrency, and stopping."""
from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cri import server as cri_server
from cri.api.v1 import api_pb2 as pb
from cri.rpc.context import Call
from cri.rpc.server import Method
from cri.rpc.status import StatusCode

# A server thread that dies of an exception fails the test that made it die.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

ECHO, STREAM = "/test.T/Echo", "/test.T/Stream"
MiB = 1 << 20


def echo(request: pb.VersionRequest, context: Call) -> pb.VersionResponse:
    return pb.VersionResponse(version=request.version, runtime_name="echo")


def count(request: pb.VersionRequest, context: Call) -> Iterator[pb.VersionResponse]:
    for i in range(int(request.version)):
        yield pb.VersionResponse(version=str(i))


BASE = {ECHO: Method(pb.VersionRequest, echo, streaming=False),
        STREAM: Method(pb.VersionRequest, count, streaming=True)}


def unary(channel: grpc.Channel, path: str = ECHO) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(path, request_serializer=pb.VersionRequest.SerializeToString,
                               response_deserializer=pb.VersionResponse.FromString)


def streaming(channel: grpc.Channel, path: str = STREAM) -> grpc.UnaryStreamMultiCallable:
    return channel.unary_stream(path, request_serializer=pb.VersionRequest.SerializeToString,
                                response_deserializer=pb.VersionResponse.FromString)


def text(n: int, seed: int) -> str:
    return random.Random(seed).randbytes(n // 2).hex()


def test_unary_call_returns_its_reply(serve) -> None:
    channel = serve(BASE).channel()
    assert unary(channel)(pb.VersionRequest(version="0.1.0"), timeout=5) == pb.VersionResponse(
        version="0.1.0", runtime_name="echo")


def test_abort_reaches_the_client_with_its_code_and_exact_message(serve) -> None:
    message = "100% broken:\nline two; café 日本 \x7f tab\t'quoted' %41"

    def aborting(request, context: Call):
        context.abort(StatusCode.FAILED_PRECONDITION, message)

    channel = serve({**BASE, "/test.T/Abort": Method(pb.VersionRequest, aborting, False)}).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel, "/test.T/Abort")(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == message


def test_abort_message_with_surrounding_spaces_arrives_exactly(serve) -> None:
    # h2 strips a header value's surrounding whitespace (RFC 9113 forbids it), so the spaces of a
    # message's ends must travel percent-encoded to arrive.
    message = "  indented, and a trailing space "

    def aborting(request, context: Call):
        context.abort(StatusCode.INVALID_ARGUMENT, message)

    channel = serve({"/test.T/Abort": Method(pb.VersionRequest, aborting, False)}).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel, "/test.T/Abort")(pb.VersionRequest(), timeout=5)
    assert err.value.details() == message


def test_unknown_method_is_unimplemented(serve) -> None:
    channel = serve(BASE).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel, "/test.T/Nope")(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert unary(channel)(pb.VersionRequest(version="after"), timeout=5).version == "after"


def test_handler_exception_is_unknown(serve) -> None:
    def raising(request, context):
        raise RuntimeError("boom")

    channel = serve({**BASE, "/test.T/Raise": Method(pb.VersionRequest, raising, False)}).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel, "/test.T/Raise")(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNKNOWN
    assert "boom" in err.value.details()


def test_request_that_does_not_parse_is_internal(serve) -> None:
    channel = serve(BASE).channel()
    call = channel.unary_unary(ECHO, request_serializer=bytes, response_deserializer=pb.VersionResponse.FromString)
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff\xff\xff", timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL


def test_ten_mib_request_and_reply_arrive_intact(serve) -> None:
    def digest(request: pb.VersionRequest, context) -> pb.VersionResponse:
        return pb.VersionResponse(version=hashlib.sha256(request.version.encode()).hexdigest())

    def big(request: pb.VersionRequest, context) -> pb.VersionResponse:
        return pb.VersionResponse(version=text(int(request.version), seed=2))

    methods = {**BASE, "/test.T/Digest": Method(pb.VersionRequest, digest, False),
               "/test.T/Big": Method(pb.VersionRequest, big, False)}
    channel = serve(methods, max_receive=16 * MiB, max_send=16 * MiB).channel()
    request = text(10 * MiB, seed=1)
    reply = unary(channel, "/test.T/Digest")(pb.VersionRequest(version=request), timeout=10)
    assert reply.version == hashlib.sha256(request.encode()).hexdigest()
    reply = unary(channel, "/test.T/Big")(pb.VersionRequest(version=str(10 * MiB)), timeout=10)
    assert reply.version == text(10 * MiB, seed=2)
    # and both ways in one call
    assert unary(channel)(pb.VersionRequest(version=request), timeout=10).version == request


def test_concurrent_big_replies_share_the_connections_window(serve, busy_switching) -> None:
    def big(request: pb.VersionRequest, context) -> pb.VersionResponse:
        return pb.VersionResponse(version=text(2 * MiB, seed=int(request.version)))

    channel = serve({"/test.T/Big": Method(pb.VersionRequest, big, False)}, workers=8,
                    max_send=16 * MiB).channel()
    call = unary(channel, "/test.T/Big")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: call(pb.VersionRequest(version=str(i % 8)), timeout=10).version, range(48)))
    assert replies == [text(2 * MiB, seed=i % 8) for i in range(48)]


@pytest.mark.parametrize(("size", "limit"), [(2048, 1024), (20 << 10, 1024), (3 * MiB, MiB)],
                         ids=["one-frame", "two-frames", "many-frames"])
def test_request_over_max_receive_is_resource_exhausted_and_the_connection_serves_on(serve, size, limit) -> None:
    channel = serve(BASE, max_receive=limit).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel)(pb.VersionRequest(version="x" * size), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert unary(channel)(pb.VersionRequest(version="small"), timeout=5).version == "small"


def test_reply_over_max_send_is_resource_exhausted(serve) -> None:
    channel = serve(BASE, max_send=1000).channel()
    with pytest.raises(grpc.RpcError) as err:
        unary(channel)(pb.VersionRequest(version="x" * 2000), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert unary(channel)(pb.VersionRequest(version="small"), timeout=5).version == "small"


def test_streaming_replies_arrive_in_order(serve) -> None:
    channel = serve(BASE).channel()
    assert [r.version for r in streaming(channel)(pb.VersionRequest(version="50"), timeout=5)] == [
        str(i) for i in range(50)]
    assert list(streaming(channel)(pb.VersionRequest(version="0"), timeout=5)) == []


def test_streaming_error_after_replies_keeps_the_replies(serve) -> None:
    def failing(request, context: Call):
        yield pb.VersionResponse(version="first")
        context.abort(StatusCode.NOT_FOUND, "gone")

    channel = serve({"/test.T/Fail": Method(pb.VersionRequest, failing, True)}).channel()
    replies = streaming(channel, "/test.T/Fail")(pb.VersionRequest(), timeout=5)
    assert next(replies).version == "first"
    with pytest.raises(grpc.RpcError) as err:
        next(replies)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and err.value.details() == "gone"


class Waiting:
    """A streaming handler that sends one reply, then waits until its call ends."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.woken = threading.Event()
        self.closed = threading.Event()  # the generator's clean-up ran

    def __call__(self, request, context: Call) -> Iterator[pb.VersionResponse]:
        try:
            yield pb.VersionResponse(version="first")
            context.add_callback(self.woken.set)
            self.waiting.set()
            self.woken.wait(10)
            yield pb.VersionResponse(version="after the end")
        finally:
            self.closed.set()


def test_client_cancel_wakes_a_waiting_stream(serve) -> None:
    handler = Waiting()
    channel = serve({"/test.T/Wait": Method(pb.VersionRequest, handler, True)}).channel()
    replies = streaming(channel, "/test.T/Wait")(pb.VersionRequest())
    assert next(replies).version == "first"
    assert handler.waiting.wait(5)
    assert not handler.woken.is_set()
    replies.cancel()
    assert handler.woken.wait(5), "the call's callback did not run on the client's cancel"
    assert handler.closed.wait(5)


def test_callback_added_after_the_end_runs_at_once() -> None:
    call = Call(None)
    ran: list[str] = []
    call.add_callback(lambda: ran.append("before"))
    call.end()
    call.end()
    call.add_callback(lambda: ran.append("after"))
    assert ran == ["before", "after"]


def test_the_clients_deadline_reaches_the_handler(serve) -> None:
    def remaining(request, context: Call) -> pb.VersionResponse:
        return pb.VersionResponse(version=repr(context.time_remaining()))

    channel = serve({"/test.T/Left": Method(pb.VersionRequest, remaining, False)}).channel()
    call = unary(channel, "/test.T/Left")
    assert 3.0 <= float(call(pb.VersionRequest(), timeout=5).version) <= 5.5
    assert call(pb.VersionRequest()).version == "None"


def test_twenty_concurrent_calls_on_four_workers(serve) -> None:
    barrier = threading.Barrier(4, timeout=5)  # each round needs all four workers at once

    def gathered(request: pb.VersionRequest, context) -> pb.VersionResponse:
        barrier.wait()
        return pb.VersionResponse(version=request.version)

    channel = serve({"/test.T/Gather": Method(pb.VersionRequest, gathered, False)}, workers=4).channel()
    call = unary(channel, "/test.T/Gather")
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda i: call(pb.VersionRequest(version=str(i)), timeout=10).version, range(20)))
    assert replies == [str(i) for i in range(20)]


class Blocking:
    """A unary handler that waits for the test to release it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: pb.VersionRequest, context) -> pb.VersionResponse:
        self.entered.set()
        self.release.wait(10)
        return pb.VersionResponse(version="finished " + request.version)


def test_stop_with_grace_lets_a_call_in_flight_finish_and_refuses_new_connections(serve) -> None:
    handler = Blocking()
    served = serve({**BASE, "/test.T/Block": Method(pb.VersionRequest, handler, False)})
    future = unary(served.channel(), "/test.T/Block").future(pb.VersionRequest(version="late"), timeout=10)
    assert handler.entered.wait(5)
    done = served.stop(5)
    assert not done.is_set()
    with pytest.raises(grpc.RpcError) as err:  # a new connection during the grace
        unary(served.channel())(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    handler.release.set()
    assert future.result(timeout=5).version == "finished late"
    assert done.wait(5)
    with pytest.raises(grpc.RpcError) as err:  # and after
        unary(served.channel())(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_stop_with_grace_refuses_new_calls_on_an_open_connection(serve) -> None:
    handler = Blocking()
    served = serve({**BASE, "/test.T/Block": Method(pb.VersionRequest, handler, False)})
    channel = served.channel()
    assert unary(channel)(pb.VersionRequest(version="warm"), timeout=5).version == "warm"
    future = unary(channel, "/test.T/Block").future(pb.VersionRequest(version="late"), timeout=10)
    assert handler.entered.wait(5)
    done = served.stop(5)
    with pytest.raises(grpc.RpcError) as err:
        unary(channel)(pb.VersionRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    handler.release.set()
    assert future.result(timeout=5).version == "finished late"
    assert done.wait(5)


def test_stop_without_grace_ends_a_waiting_stream(serve) -> None:
    handler = Waiting()
    served = serve({"/test.T/Wait": Method(pb.VersionRequest, handler, True)})
    replies = streaming(served.channel(), "/test.T/Wait")(pb.VersionRequest(), timeout=10)
    assert next(replies).version == "first"
    assert handler.waiting.wait(5)
    done = served.stop(None)
    assert handler.woken.wait(5), "stop(None) did not end the waiting call"
    assert done.wait(5)
    with pytest.raises(grpc.RpcError) as err:
        list(replies)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL)


def test_stop_twice_is_harmless(serve) -> None:
    served = serve(BASE)
    assert unary(served.channel())(pb.VersionRequest(version="x"), timeout=5).version == "x"
    assert served.stop(None).wait(5)
    assert served.stop(None).wait(5)  # grpc.Server.stop may be called again; so may this one


def test_add_insecure_port_takes_unix_only(serve, socket_dir) -> None:
    server = cri_server.Server(BASE, 1, 1024, 1024)
    with pytest.raises(ValueError):
        server.add_insecure_port("localhost:1234")
    assert server.add_insecure_port(f"unix://{socket_dir}/missing/dir.sock") == 0


@pytest.mark.parametrize(("service", "status"), [
    ("", health_pb2.HealthCheckResponse.SERVING),
    ("runtime.v1.RuntimeService", health_pb2.HealthCheckResponse.SERVING),
    ("runtime.v1.ImageService", health_pb2.HealthCheckResponse.SERVING),
])
def test_health_check_serves(serve, service, status) -> None:
    channel = serve(cri_server.build(object(), object(), workers=2)).channel()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == status


def test_health_check_of_an_unknown_service_is_not_found(serve) -> None:
    channel = serve(cri_server.build(object(), object(), workers=2)).channel()
    with pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
