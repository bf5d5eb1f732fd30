"""Exec, attach and port-forward over SPDY/3.1, as the kubelet's streaming library serves them: an
HTTP upgrade that negotiates the protocol version (X-Stream-Protocol-Version), then streams the
client opens, told apart by their `streamtype` header (and `port`, `requestid` for port-forward).
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable

from cri.streaming.httphead import RequestHead, respond
from cri.streaming.portforward import Connect, forward
from cri.streaming.remotecommand import Streams
from cri.streaming.spdy import Connection
from cri.streaming.spdy_errors import SpdyError
from cri.streaming.spdy_stream import Stream
from runtime.errors import FailedPrecondition, InvalidArgument

# The kubelet's order; v5 exists only over WebSocket.
REMOTECOMMAND = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
PORTFORWARD = ("portforward.k8s.io",)
STREAM_CREATION_SECONDS = 30.0  # for the client to open every stream it said it would
log = logging.getLogger("pycrid.streaming")


class StreamReader:
    """A client stream read as a byte source: a reset or a lost connection is its end."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def read(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except SpdyError:
            return b""


class StreamWriter:
    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def close(self) -> None:
        self._stream.close()


def upgrade(conn: socket.socket, head: RequestHead, supported: tuple[str, ...]) -> str:
    """Answers the upgrade (101) with the protocol version chosen: the first the client offers that
    we serve; "" when it offers none (the oldest protocol then)."""
    if "spdy/3.1" not in {u.lower() for u in head.tokens("Upgrade")}:
        raise InvalidArgument("not an upgrade to SPDY/3.1 or WebSocket")
    offered = head.tokens("X-Stream-Protocol-Version")
    chosen = next((p for p in offered if p in supported), "")
    if offered and not chosen:
        raise InvalidArgument(f"none of the protocols {offered} is served; served are {list(supported)}")
    log.info("streaming %s: SPDY/3.1, protocol %s", head.endpoint, chosen or "none offered")
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    if chosen:
        headers["X-Stream-Protocol-Version"] = chosen
    respond(conn, "101 Switching Protocols", headers)
    return chosen


class Opened:
    """The streams the client opens, handed from the connection's reader to the session."""

    def __init__(self) -> None:
        self.streams: queue.Queue[Stream] = queue.Queue()

    def __call__(self, stream: Stream) -> bool:
        self.streams.put(stream)
        return True


def remotecommand(sock: socket.socket, head: RequestHead, received: bytes, stdin: bool, stdout: bool,
                  stderr: bool, tty: bool, run: Callable[[Streams], None], idle_timeout: float) -> None:
    version = upgrade(sock, head, REMOTECOMMAND)
    opened = Opened()
    conn = Connection(sock, opened, preread=received)
    conn.start()
    close_when_idle(conn, idle_timeout)
    try:
        resize = tty and version in REMOTECOMMAND[:2]  # v3 and v4 carry terminal sizes
        wanted = {"error"} | {name for name, on in (("stdin", stdin), ("stdout", stdout),
                                                   ("stderr", stderr and not tty), ("resize", resize)) if on}
        got = _collect(opened, wanted)
        run(Streams(stdin=StreamReader(got["stdin"]) if "stdin" in got else None,
                    stdout=StreamWriter(got["stdout"]) if "stdout" in got else None,
                    stderr=StreamWriter(got["stderr"]) if "stderr" in got else None,
                    resize=StreamReader(got["resize"]) if "resize" in got else None,
                    error=StreamWriter(got["error"]), json_status=version == REMOTECOMMAND[0],
                    wait_closed=conn.wait_closed))
    finally:
        conn.close()


def close_when_idle(conn: Connection, timeout: float) -> None:
    """Closes the connection once no frame went either way for ``timeout`` seconds (the kubelet's
    streaming idle timeout); a live client pings every few seconds."""
    def watch() -> None:
        while not conn.wait_closed(min(timeout, 30.0)):
            if time.monotonic() - conn.last_frame_at >= timeout:
                log.info("closing a streaming connection idle for %.0fs", timeout)
                conn.close()
                return
    threading.Thread(target=watch, name="idle watch", daemon=True).start()


def _collect(opened: Opened, wanted: set[str]) -> dict[str, Stream]:
    got: dict[str, Stream] = {}
    deadline = time.monotonic() + STREAM_CREATION_SECONDS
    while not wanted <= got.keys():
        try:
            stream = opened.streams.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise FailedPrecondition(f"the client did not open its streams {sorted(wanted - got.keys())} "
                                     f"within {STREAM_CREATION_SECONDS:.0f}s") from None
        kind = stream.headers.get("streamtype", "")
        if kind in wanted and kind not in got:
            got[kind] = stream
        else:
            stream.reset()
    return got


def portforward(sock: socket.socket, head: RequestHead, received: bytes, allowed: tuple[int, ...],
                connect: Connect, idle_timeout: float) -> None:
    upgrade(sock, head, PORTFORWARD)
    serve_portforward(sock, received, allowed, connect, idle_timeout)


def serve_portforward(sock: socket.socket, received: bytes, allowed: tuple[int, ...], connect: Connect,
                      idle_timeout: float) -> None:
    """Until the client closes the connection: each (error, data) stream pair it opens with one
    `requestid` is one connection to its `port` in the pod."""
    opened = Opened()
    conn = Connection(sock, opened, preread=received)
    conn.start()
    close_when_idle(conn, idle_timeout)
    pairs: dict[str, dict[str, Stream]] = {}
    try:
        while not conn.closed:
            try:
                stream = opened.streams.get(timeout=1.0)
            except queue.Empty:
                continue
            request = stream.headers.get("requestid", "")
            pair = pairs.setdefault(request, {})
            pair[stream.headers.get("streamtype", "")] = stream
            if {"data", "error"} <= pair.keys():
                del pairs[request]
                threading.Thread(target=_forward_pair, args=(pair, allowed, connect),
                                 name=f"spdy forward {request}", daemon=True).start()
    finally:
        conn.close()


def _forward_pair(pair: dict[str, Stream], allowed: tuple[int, ...], connect: Connect) -> None:
    data, error = pair["data"], pair["error"]
    try:
        port = int(data.headers.get("port", ""))
        if allowed and port not in allowed:
            raise FailedPrecondition(f"port {port} was not in the PortForward request")
    except (ValueError, FailedPrecondition) as e:
        StreamWriter(error).write(f"{e}".encode())
        error.close()
        data.close()
        return
    forward(port, StreamReader(data), StreamWriter(data), StreamWriter(error), connect)
