"""One streaming session, on a connection whose URL named a live token: the protocol (SPDY/3.1, or
WebSocket with SPDY tunnelled in it for port forwards) and the exec, attach or port forward over it.
Loaded with the first session (server.py)."""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from cri.streaming import spdy_serve, ws_serve
from cri.streaming.channel_protocol import is_websocket_request
from cri.streaming.httphead import RequestHead
from cri.streaming.remotecommand import Stop, Streams, fail, run_attach, run_exec
from cri.streaming.requests import ExecRequest, PortForwardRequest, StreamRequest
from cri.streaming.tunnel import is_tunnel, open_tunnel
from runtime.errors import PycridError

if TYPE_CHECKING:
    from cri.streaming.server import Runtime


def run_session(conn: socket.socket, head: RequestHead, received: bytes, request: StreamRequest,
                runtime: Runtime, idle_timeout: float) -> None:
    """Serves one upgraded connection: the exec, attach or port-forward ``request`` names."""
    websocket = is_websocket_request(head.raw_headers)
    transport = ws_serve if websocket else spdy_serve
    if isinstance(request, PortForwardRequest):
        def connect(port: int) -> socket.socket:
            return runtime.connect_port(request.sandbox_id, port)
        if websocket and is_tunnel(head):  # SPDY inside WebSocket (client-go's newer dialer)
            inner = open_tunnel(conn, head, received, spdy_serve.PORTFORWARD)
            with inner:
                spdy_serve.serve_portforward(inner, b"", request.ports, connect, idle_timeout)
            return
        transport.portforward(conn, head, received, request.ports, connect, idle_timeout)
        return
    streams = request.streams()

    def session(client: Streams) -> None:
        stop = Stop()
        try:
            if isinstance(request, ExecRequest):
                run_exec(runtime.exec_session(request.container_id, request.cmd, request.tty, streams),
                         client, stop)
            else:
                run_attach(runtime.attach_session(request.container_id, streams), client, stop)
        except PycridError as e:
            fail(client, str(e))
        finally:
            stop.close()

    transport.remotecommand(conn, head, received, "stdin" in streams, "stdout" in streams,
                            "stderr" in streams, request.tty, session, idle_timeout)
