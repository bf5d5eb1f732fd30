"""Exec, attach and port-forward over WebSocket: the channel protocols (websocket.py,
channel_connection.py) joined to the transport-independent sessions (remotecommand.py,
portforward.py)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from cri.streaming.channel_connection import ChannelConnection, Limits
from cri.streaming.channel_protocol import ERROR, RESIZE, STDERR, STDIN, STDOUT, StreamKind
from cri.streaming.httphead import RequestHead
from cri.streaming.portforward import Connect, forward
from cri.streaming.portforward_channels import data_channel, error_channel, initial_messages, parse_ports
from cri.streaming.remotecommand import Streams
from cri.streaming.websocket import accept
from runtime.errors import FailedPrecondition


class ChannelReader:
    def __init__(self, conn: ChannelConnection, channel: int) -> None:
        self._conn, self._channel = conn, channel

    def read(self, size: int) -> bytes:
        return self._conn.read(self._channel, size)


class ChannelWriter:
    def __init__(self, conn: ChannelConnection, channel: int) -> None:
        self._conn, self._channel = conn, channel

    def write(self, data: bytes) -> None:
        self._conn.write(self._channel, data)

    def close(self) -> None:
        """The channel protocols have no per-channel end from the server: the connection's close
        ends them all."""


def remotecommand(sock: socket.socket, head: RequestHead, received: bytes, stdin: bool, stdout: bool,
                  stderr: bool, tty: bool, run: Callable[[Streams], None], idle_timeout: float) -> None:
    """Opens the channels the request asked for and runs the session over them."""
    readable = {RESIZE} | ({STDIN} if stdin else set())
    conn = accept(sock, head.target, head.raw_headers, received, StreamKind.REMOTECOMMAND, readable,
                  Limits(idle_timeout=idle_timeout))
    try:
        writable = [c for c, on in ((STDOUT, stdout), (STDERR, stderr and not tty), (ERROR, True)) if on]
        conn.write(writable[0], b"")  # the streams are ready (what clients wait for)
        streams = Streams(stdin=ChannelReader(conn, STDIN) if stdin else None,
                          stdout=ChannelWriter(conn, STDOUT) if stdout else None,
                          stderr=ChannelWriter(conn, STDERR) if stderr and not tty else None,
                          resize=ChannelReader(conn, RESIZE) if tty else None,
                          error=ChannelWriter(conn, ERROR), json_status=conn.protocol.version >= 4,
                          wait_closed=conn.wait_closed)
        run(streams)
    finally:
        for channel in readable:
            conn.stop_reading(channel)
        conn.close()


def portforward(sock: socket.socket, head: RequestHead, received: bytes, allowed: tuple[int, ...],
                connect: Connect, idle_timeout: float) -> None:
    """One connection per port of the query (else of the PortForward request), for the life of
    the WebSocket."""
    ports = parse_ports(head.query, allowed)
    conn = accept(sock, head.target, head.raw_headers, received, StreamKind.PORTFORWARD,
                  {data_channel(i) for i in range(len(ports))}, Limits(idle_timeout=idle_timeout))
    try:
        for channel, data in initial_messages(ports):
            conn.write(channel, data)
        threads = []
        for i, port in enumerate(ports):
            target = connect if not allowed or port in allowed else _refuse
            t = threading.Thread(target=forward, args=(port, ChannelReader(conn, data_channel(i)),
                                                       ChannelWriter(conn, data_channel(i)),
                                                       ChannelWriter(conn, error_channel(i)), target),
                                 name=f"ws forward {port}", daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    finally:
        conn.close()


def _refuse(port: int) -> socket.socket:
    raise FailedPrecondition(f"port {port} was not in the PortForward request")
