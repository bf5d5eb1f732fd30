"""The gRPC server: both CRI services and the standard health service on one unix socket."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2

from cri.admission import Admission
from cri.api.v1 import api_pb2
from cri.instrument import instrumented
from cri.rpc.context import Call
from cri.rpc.server import Method, Server
from cri.rpc.status import StatusCode
from runtime.container.execsync import MAX_OUTPUT

# The kubelet's CRI client allows 16 MiB messages (ListContainers on a full node); match it.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# An ExecSync reply may carry 16 MiB of stdout and 16 MiB of stderr (runtime/container/execsync.py);
# whether that is too big is the client's call, as with containerd.
MAX_REPLY_BYTES = 2 * MAX_OUTPUT + 1024 * 1024
SERVICES = ("runtime.v1.RuntimeService", "runtime.v1.ImageService")
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def build(runtime_service: object, image_service: object, workers: int) -> Server:
    services = api_pb2.DESCRIPTOR.services_by_name
    admission = Admission(workers)  # one budget of slow calls for both services
    methods = {HEALTH_CHECK: Method(health_pb2.HealthCheckRequest, health_check, streaming=False)}
    for name, servicer in (("RuntimeService", runtime_service), ("ImageService", image_service)):
        methods.update(service_methods(services[name], instrumented(services[name], servicer, admission=admission)))
    return Server(methods, workers, max_receive=MAX_MESSAGE_BYTES, max_send=MAX_REPLY_BYTES)


def service_methods(service: ServiceDescriptor, handlers: object) -> dict[str, Method]:
    """Each RPC's path, request class and handler (one per method of ``service`` on ``handlers``)."""
    methods = {}
    for method in service.methods:
        handler: Callable[[Any, Call], Any] = getattr(handlers, method.name)
        methods[f"/{service.full_name}/{method.name}"] = Method(
            getattr(api_pb2, method.input_type.name), handler, method.server_streaming)
    return methods


def health_check(request: health_pb2.HealthCheckRequest, context: Call) -> health_pb2.HealthCheckResponse:
    """SERVING for the server ("") and both CRI services: each answers while the process serves."""
    if request.service not in ("", *SERVICES):
        context.abort(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
