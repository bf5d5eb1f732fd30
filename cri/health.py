"""The standard gRPC health service's Check (grpc.health.v1), with its two messages described
here: two fields do not justify a dependency (grpcio-health-checking brings grpcio with it). The
messages live in a pool of their own, under a package of their own, so a process that also loads
grpc_health's generated module (the tests) has no clash; on the wire only field numbers count."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from cri.rpc.context import Call
from cri.rpc.status import StatusCode

PATH = "/grpc.health.v1.Health/Check"
SERVING = 1  # HealthCheckResponse.ServingStatus, as grpc.health.v1 numbers it


def _messages() -> tuple[Any, Any]:  # classes made at run time: their fields are unknown to mypy
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="pycrid/health.proto", package="pycrid.health", syntax="proto3")
    request = proto.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    response = proto.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        status.value.add(name=name, number=number)
    response.field.add(name="status", number=1, type=field.TYPE_ENUM, label=field.LABEL_OPTIONAL,
                       type_name=".pycrid.health.HealthCheckResponse.ServingStatus")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("pycrid.health.HealthCheckRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("pycrid.health.HealthCheckResponse")))


HealthCheckRequest, HealthCheckResponse = _messages()


def check(services: tuple[str, ...]) -> Callable[[Any, Call], Message]:
    """The Check handler: SERVING for the server ("") and each of ``services`` (each answers while
    the process serves), NOT_FOUND for any other name, as grpc's own health servicer answers."""
    def handler(request: Any, context: Call) -> Message:
        if request.service not in ("", *services):
            context.abort(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        reply: Message = HealthCheckResponse(status=SERVING)
        return reply
    return handler
