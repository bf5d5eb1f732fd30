"""The gRPC server: both CRI services and the standard health service on one unix socket."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cri.admission import Admission
from cri.api.v1 import api_pb2, api_pb2_grpc
from cri.instrument import instrumented
from runtime.container.execsync import MAX_OUTPUT

# The kubelet's CRI client allows 16 MiB messages (ListContainers on a full node); match it.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# An ExecSync reply may carry 16 MiB of stdout and 16 MiB of stderr (runtime/container/execsync.py);
# whether that is too big is the client's call, as with containerd.
MAX_REPLY_BYTES = 2 * MAX_OUTPUT + 1024 * 1024
SERVICES = ("runtime.v1.RuntimeService", "runtime.v1.ImageService")


def build(runtime_service: object, image_service: object, workers: int) -> grpc.Server:
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_REPLY_BYTES)],
    )
    services = api_pb2.DESCRIPTOR.services_by_name
    admission = Admission(workers)  # one budget of slow calls for both services
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(
        instrumented(services["RuntimeService"], runtime_service, admission=admission), server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(
        instrumented(services["ImageService"], image_service, admission=admission), server)
    checker = health.HealthServicer()
    for name in ("", *SERVICES):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    return server
