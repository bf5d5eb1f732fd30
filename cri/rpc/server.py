"""The gRPC server on a unix socket: accepts connections (one reading thread each), runs each call
in a fixed pool of handler threads, and stops gracefully. Its surface is the part of grpc.Server
pycrid used (add_insecure_port, start, stop), so the agent needs no grpcio: its C core is ~21 MiB
of the agent's memory, more than all of pycrid's own code."""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from cri.rpc.connection import Connection, StreamGone
from cri.rpc.context import Call
from cri.rpc.status import RpcAbort, StatusCode
from cri.rpc.wire import RequestHead

log = logging.getLogger("pycrid.rpc")


@dataclass(frozen=True)
class Method:
    request_type: type[Message]
    handler: Callable[[Any, Call], Any]  # the reply, or for a streaming method an iterator of them
    streaming: bool


class Server:
    def __init__(self, methods: Mapping[str, Method], workers: int, max_receive: int, max_send: int) -> None:
        self._methods = dict(methods)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
        self._max_receive, self._max_send = max_receive, max_send
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._stopped: threading.Event | None = None  # set once stop() is done

    def add_insecure_port(self, address: str) -> int:
        """Binds ``unix://PATH`` (the only kind pycrid serves); 1 when bound, as grpc answers."""
        path = address.removeprefix("unix://")
        if path == address:
            raise ValueError(f"{address!r}: only unix:// addresses are served")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind(path)
            # Listening from here, as grpc does: a client's connect waits in the backlog until
            # start(), and a second pycrid's stale-socket check sees this one live.
            listener.listen(128)
        except OSError:
            listener.close()
            return 0
        self._listener = listener
        return 1

    def start(self) -> None:
        assert self._listener is not None, "add_insecure_port first"
        threading.Thread(target=self._accept, args=(self._listener,), name="rpc-accept", daemon=True).start()

    def stop(self, grace: float | None) -> threading.Event:
        """No new calls from now; the calls in flight get ``grace`` seconds (None: none), then
        every connection is closed. The event is set once all is done."""
        with self._lock:
            if self._stopped is not None:
                return self._stopped
            self._stopped = threading.Event()
            connections, done = list(self._connections), self._stopped
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        for connection in connections:
            connection.refuse_new_calls()
        threading.Thread(target=self._drain, args=(connections, grace or 0.0, done), name="rpc-stop",
                         daemon=True).start()
        return done

    def _drain(self, connections: list[Connection], grace: float, done: threading.Event) -> None:
        deadline = time.monotonic() + grace
        while any(c.calls() for c in connections) and time.monotonic() < deadline:
            time.sleep(0.05)
        for connection in connections:
            connection.goodbye()
        self._pool.shutdown(wait=False, cancel_futures=True)
        done.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                break
            with self._lock:
                if self._stopped is not None:
                    sock.close()
                    continue
                connection = Connection(sock, self._start_call, self._max_receive, self._forget)
                self._connections.add(connection)
            threading.Thread(target=connection.run, name="rpc-connection", daemon=True).start()
        listener.close()

    def _forget(self, connection: Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _start_call(self, connection: Connection, stream_id: int, head: RequestHead, payload: bytes,
                    call: Call) -> None:
        try:
            self._pool.submit(self._serve, connection, stream_id, head, payload, call)
        except RuntimeError:  # the pool is shut down: the server is stopping
            connection.finish(stream_id, StatusCode.UNAVAILABLE, "pycrid is shutting down", headers_sent=False)
            connection.task_done(stream_id)

    def _serve(self, connection: Connection, stream_id: int, head: RequestHead, payload: bytes, call: Call) -> None:
        try:
            if not call.ended:  # a call the client reset while it waited for a worker is not run
                self._answer(connection, stream_id, head, payload, call)
        finally:
            connection.task_done(stream_id)

    def _answer(self, connection: Connection, stream_id: int, head: RequestHead, payload: bytes, call: Call) -> None:
        sent = False
        try:
            method = self._methods.get(head.path)
            if method is None:
                raise RpcAbort(StatusCode.UNIMPLEMENTED, f"unknown method {head.path}")
            remaining = call.time_remaining()
            if remaining is not None and remaining <= 0:
                raise RpcAbort(StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call started")
            try:
                request = method.request_type.FromString(payload)
            except DecodeError as e:
                raise RpcAbort(StatusCode.INTERNAL, f"{head.path}: the request does not parse: {e}") from None
            replies = method.handler(request, call)
            for reply in _stream(replies) if method.streaming else (replies,):
                payload = self._serialized(reply)
                if not sent:
                    connection.send_headers(stream_id)
                    sent = True  # from here the status goes as trailers, whatever happens next
                connection.send_message(stream_id, payload, flush=method.streaming)
            code, message = StatusCode.OK, ""
        except StreamGone:
            call.end()
            return
        except RpcAbort as e:
            code, message = e.code, e.message
        except Exception as e:  # noqa: BLE001 - a handler's bug is the call's UNKNOWN, not the server's end
            log.exception("rpc %s raised", head.path)
            code, message = StatusCode.UNKNOWN, f"Exception calling application: {e}"
        connection.finish(stream_id, code, message, headers_sent=sent)
        call.end()

    def _serialized(self, reply: Message) -> bytes:
        payload = reply.SerializeToString()
        if len(payload) > self._max_send:
            raise RpcAbort(StatusCode.RESOURCE_EXHAUSTED,
                           f"sent message larger than max ({len(payload)} vs. {self._max_send})")
        return payload


def _stream(replies: Iterable[Message]) -> Iterator[Message]:
    """A streaming handler's replies; closed when the call ends early, so its generator's
    clean-up runs now rather than at some later collection."""
    iterator = iter(replies)
    try:
        yield from iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
