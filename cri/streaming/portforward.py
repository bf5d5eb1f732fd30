"""Port-forward, whatever carries it: each forwarded connection is a pair of client streams (data
and error) joined to a TCP connection made inside the pod's network namespace. A failure to
connect (nothing listens there) goes to the error stream as text, as the kubelet's does."""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from cri.streaming.remotecommand import CHUNK, Readable, Writable
from runtime.errors import PycridError

log = logging.getLogger("pycrid.streaming")
Connect = Callable[[int], socket.socket]  # port → a connection to it inside the pod


def forward(port: int, data_in: Readable, data_out: Writable, error: Writable, connect: Connect) -> None:
    """Joins one client connection to ``port``; returns when both directions are done."""
    try:
        conn = connect(port)
    except PycridError as e:
        _report(error, f"error forwarding port {port} to the pod: {e}")
        data_out.close()
        return
    upstream = threading.Thread(target=_to_pod, args=(data_in, conn), name=f"forward {port} in", daemon=True)
    upstream.start()
    try:
        while data := conn.recv(CHUNK):
            data_out.write(data)
    except Exception as e:  # noqa: BLE001 - either side went away: the connection ends
        log.debug("port %d: copy to the client ended: %s", port, e)
    finally:
        data_out.close()
        upstream.join(timeout=1)
        conn.close()
        error.close()


def _to_pod(source: Readable, conn: socket.socket) -> None:
    try:
        while data := source.read(CHUNK):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # the client is done sending: the pod's side reads EOF
    except OSError as e:
        log.debug("copy to the pod ended: %s", e)


def _report(error: Writable, message: str) -> None:
    try:
        error.write(message.encode())
        error.close()
    except Exception as e:  # noqa: BLE001 - the client is gone already
        log.debug("writing a port-forward error failed: %s", e)
