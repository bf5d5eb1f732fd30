"""Exec and attach, whatever carries them (SPDY streams or WebSocket channels): the client's
stdin, stdout, stderr and resize streams copied to and from a runtime session's descriptors, and
the outcome written to the error stream.

One thread per direction. Each copies a chunk at a time, so the only buffers are the kernel's and
the transport's flow-control window: a client that stops reading stops the copy, and the command
blocks on its full pipe (back-pressure) instead of our memory growing.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from cri.streaming.status import Outcome, status_json, status_text
from runtime.container.sessions import AttachSession, ExecSession, Session
from runtime.errors import PycridError
from runtime.linux.poll import wait_readable

CHUNK = 32 * 1024
log = logging.getLogger("pycrid.streaming")


class Readable(Protocol):
    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end."""


class Writable(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None:
        """No more data from us on this stream (the client reads its end)."""


@dataclass
class Streams:
    """The client's side, as the transport opened it; None where the client asked for none."""

    stdin: Readable | None = None
    stdout: Writable | None = None
    stderr: Writable | None = None
    resize: Readable | None = None
    error: Writable | None = None
    json_status: bool = True  # protocol v4 and later; before, the failure's text only
    # Blocks until the client's connection has ended (it went, or sat idle too long).
    wait_closed: Callable[[float | None], bool] | None = None


class Stop:
    """Set when the client is gone: every copy thread waits on it beside its descriptor."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.event = threading.Event()
        self._lock = threading.Lock()  # a late set() must not write to a closed (reused) descriptor
        self._closed = False

    def set(self) -> None:
        with self._lock:
            if not self.event.is_set() and not self._closed:
                self.event.set()
                os.write(self._w, b"x")

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.event.set()
            os.close(self._r)
            os.close(self._w)


def run_exec(session: ExecSession, streams: Streams, stop: Stop) -> None:
    """Until the command ends and its output is copied; then its exit code goes to the client.
    A client that goes away ends the command: nothing a stream started outlives it."""
    outputs = _start(session, streams, stop)
    ended = threading.Event()

    def end_with_the_client() -> None:
        stop.event.wait()
        if not ended.is_set():  # once it ended, its pids are the monitor's to reap and reuse
            session.kill()

    threading.Thread(target=end_with_the_client, daemon=True).start()
    try:
        outcome = Outcome(session.wait(None))
    except PycridError as e:
        outcome = Outcome(None, str(e))
    ended.set()
    for t in outputs:
        t.join()
    _finish(session, streams, outcome)
    stop.set()


def run_attach(session: AttachSession, streams: Streams, stop: Stop) -> None:
    """Until the container's output ends (it exited) or the client goes; the container runs on."""
    outputs = _start(session, streams, stop)
    if outputs:
        for t in outputs:
            t.join()
    else:  # stdin only: until the client is done typing
        stop.event.wait()
    _finish(session, streams, Outcome())


def _start(session: Session, streams: Streams, stop: Stop) -> list[threading.Thread]:
    def spawn(name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    if streams.wait_closed is not None:
        wait_closed = streams.wait_closed

        def watch_client() -> None:
            wait_closed(None)
            stop.set()

        spawn("client", watch_client)

    if streams.stdin is not None and session.stdin >= 0:
        spawn("stdin", lambda: _copy_in(streams.stdin, session, stop))  # type: ignore[arg-type]
    if streams.resize is not None:
        spawn("resize", lambda: _resizes(streams.resize, session))  # type: ignore[arg-type]
    outputs = []
    for fd, stream in ((session.stdout, streams.stdout), (session.stderr, streams.stderr)):
        if fd >= 0 and stream is not None and not (session.terminal and stream is streams.stderr):
            outputs.append(spawn("output", partial(_copy_out, fd, stream, stop)))
    return outputs


def _copy_in(source: Readable, session: Session, stop: Stop) -> None:
    try:
        while data := source.read(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(session.stdin, view):]
    except OSError as e:
        log.debug("stdin copy ended: %s", e)
    finally:
        session.close_stdin()
        if session.stdout < 0 and session.stderr < 0:
            stop.set()  # a stdin-only attach ends with the client's input


def _copy_out(fd: int, sink: Writable, stop: Stop) -> None:
    try:
        while True:
            if stop.fileno() in wait_readable([fd, stop.fileno()], None):
                return
            try:
                data = os.read(fd, CHUNK)
            except OSError as e:
                if e.errno != errno.EIO:  # a terminal whose command is gone reads EIO: the end
                    raise
                data = b""
            if not data:
                return
            sink.write(data)
    except Exception as e:  # noqa: BLE001 - the client went away: every copy ends
        log.debug("output copy ended: %s", e)
        stop.set()
def _resizes(source: Readable, session: Session) -> None:
    """Terminal sizes, one JSON object ({"Width": w, "Height": h}) after another."""
    decoder, buffer = json.JSONDecoder(), ""
    try:
        while data := source.read(4096):
            buffer += data.decode(errors="replace")
            while buffer.strip():
                try:
                    size, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break  # incomplete: wait for more
                buffer = buffer.lstrip()[end:]
                if isinstance(size, dict) and hasattr(session, "resize"):
                    session.resize(int(size.get("Height", 0)), int(size.get("Width", 0)))
            if len(buffer) > 4096:
                return  # not terminal sizes
    except (OSError, PycridError, ValueError) as e:
        log.debug("resize stream ended: %s", e)


def fail(streams: Streams, error: str) -> None:
    """The session could not start (the container stopped meanwhile, say): the client reads why
    on its error stream, as from the kubelet."""
    _finish(Session(), streams, Outcome(None, error))


def _finish(session: Session, streams: Streams, outcome: Outcome) -> None:
    try:
        if streams.error is not None:
            message = status_json(outcome) if streams.json_status else status_text(outcome)
            if message:
                streams.error.write(message)
    except Exception as e:  # noqa: BLE001 - the client is gone already
        log.debug("writing the outcome failed: %s", e)
    finally:
        for stream in (streams.stdout, streams.stderr, streams.error):
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass
        session.close()
