"""The single boundary between gRPC and the servicers: logging, error mapping, UNIMPLEMENTED.

Servicer methods raise domain errors (runtime.errors) and never touch the gRPC context for errors;
here every exception becomes a status with a message naming the RPC and the object, and every RPC
the servicer does not define answers UNIMPLEMENTED instead of crashing. Each finished RPC is also
reported to an observer (method, status code name, seconds), the metrics' RPC counters: passed in,
or the servicer's ``observe_rpc`` attribute. The phases a unary call recorded (runtime/spans.py) go to
the servicer's ``observe_phases``, if it has one, and with PYCRID_TRACE set to the log, one line per call.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from cri.admission import Admission
from cri.errors import status_of
from cri.rpc.context import CallContext
from cri.rpc.status import StatusCode
from runtime import spans
from runtime.errors import PycridError
from runtime.spans import Span

log = logging.getLogger("pycrid.rpc")
MAX_MESSAGE = 2048
Observer = Callable[[str, str, float], None]
PhaseObserver = Callable[[str, Sequence[Span]], None]
trace_log = logging.getLogger("pycrid.trace")


def _ignore(rpc: str, code: str, seconds: float) -> None:
    pass


def _ignore_phases(rpc: str, phases: Sequence[Span]) -> None:
    pass


class Observed:
    """A servicer with an RPC observer attached, for servicers that do not carry one themselves;
    every other attribute (the RPCs) is the servicer's."""

    def __init__(self, servicer: object, observe_rpc: Observer,
                 observe_phases: PhaseObserver | None = None) -> None:
        self._servicer = servicer
        self.observe_rpc = observe_rpc
        self.observe_phases = observe_phases or _ignore_phases

    def __getattr__(self, name: str) -> Any:
        return getattr(self._servicer, name)


def instrumented(service: ServiceDescriptor, servicer: object, observe: Observer | None = None,
                 admission: Admission | None = None) -> object:
    """An object with one wrapped handler per RPC of `service` (cri/server.py serves them);
    ``admission`` bounds the slow calls and hands the caller's deadline down (cri/admission.py)."""
    observe = observe or getattr(servicer, "observe_rpc", None) or _ignore
    observe_phases: PhaseObserver = getattr(servicer, "observe_phases", None) or _ignore_phases
    trace = bool(os.environ.get("PYCRID_TRACE"))
    admission = admission or Admission(workers=1 << 16)
    handlers: dict[str, Callable[..., Any]] = {}
    for method in service.methods:
        impl = getattr(servicer, method.name, None)
        streaming = method.server_streaming
        if impl is None:
            handlers[method.name] = _unimplemented(service.name, method.name, streaming, observe)
        elif streaming:
            handlers[method.name] = _wrap_stream(method.name, impl, observe)
        else:
            handlers[method.name] = _wrap_unary(method.name, impl, observe, admission, observe_phases, trace)
    return type(f"Instrumented{service.name}", (), {k: staticmethod(v) for k, v in handlers.items()})()


def _abort(context: CallContext, rpc: str, exc: BaseException, started: float,
           observe: Observer) -> None:
    code = status_of(exc)
    observe(rpc, code.name, time.monotonic() - started)
    if isinstance(exc, PycridError):
        log.info("rpc=%s code=%s duration_ms=%.1f error=%r", rpc, code.name, _ms(started), bounded(str(exc)))
        context.abort(code, bounded(f"{rpc}: {exc}"))
    log.exception("rpc=%s code=INTERNAL duration_ms=%.1f unexpected error", rpc, _ms(started))
    context.abort(code, bounded(f"{rpc}: internal error: {type(exc).__name__}: {exc}"))


def bounded(message: str) -> str:
    """A status message of at most MAX_MESSAGE characters: one that repeats a huge argument (a
    1 MiB id) would exceed the client's metadata limit (16 KiB after percent-encoding, up to 3
    bytes per character) and reach it as a transport error instead of our status."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE - 40]}… ({len(message)} characters in all)"


def _wrap_unary(rpc: str, impl: Callable[[Any], Any], observe: Observer, admission: Admission,
                observe_phases: PhaseObserver = _ignore_phases,
                trace: bool = False) -> Callable[[Any, CallContext], Any]:
    def handler(request: Any, context: CallContext) -> Any:
        started = time.monotonic()
        with spans.recording() as phases:
            try:
                with admission.call(rpc, context.time_remaining()):
                    response = impl(request)
            except Exception as exc:  # noqa: BLE001 - mapped to a status, never leaked as a crash
                _phases_done(rpc, phases, started, observe_phases, trace)
                _abort(context, rpc, exc, started, observe)
        observe(rpc, "OK", time.monotonic() - started)
        _phases_done(rpc, phases, started, observe_phases, trace)
        log.debug("rpc=%s code=OK duration_ms=%.1f", rpc, _ms(started))
        return response
    return handler


def _phases_done(rpc: str, phases: list[Span], started: float, observe_phases: PhaseObserver, trace: bool) -> None:
    if not phases:  # a call with no marked steps (Status, List*) has nothing to break down
        return
    observe_phases(rpc, phases)
    if trace:
        trace_log.info("rpc=%s duration_ms=%.1f %s", rpc, _ms(started),
                       " ".join(f"{p.name}={p.seconds * 1000:.1f}" for p in phases))


def _wrap_stream(rpc: str, impl: Callable[[Any], Iterator[Any]], observe: Observer) -> Callable[..., Iterator[Any]]:
    def handler(request: Any, context: CallContext) -> Iterator[Any]:
        started = time.monotonic()
        try:
            stream = impl(request)
            # A stream that waits for what it sends (GetContainerEvents) has cancel(): called when
            # the RPC ends (client gone, deadline, server stopping), it wakes its waiting thread.
            cancel = getattr(stream, "cancel", None)
            if cancel is not None:
                context.add_callback(cancel)
            yield from stream
        except Exception as exc:  # noqa: BLE001
            _abort(context, rpc, exc, started, observe)
        observe(rpc, "OK", time.monotonic() - started)
        log.debug("rpc=%s code=OK duration_ms=%.1f", rpc, _ms(started))
    return handler


def _unimplemented(service: str, rpc: str, streaming: bool, observe: Observer) -> Callable[..., Any]:
    message = f"{rpc}: not implemented by pycrid yet ({service}/{rpc})"

    def handler(request: Any, context: CallContext) -> Any:
        log.info("rpc=%s code=UNIMPLEMENTED", rpc)
        observe(rpc, "UNIMPLEMENTED", 0.0)
        context.abort(StatusCode.UNIMPLEMENTED, message)

    def stream_handler(request: Any, context: CallContext) -> Iterator[Any]:
        handler(request, context)
        yield from ()

    return stream_handler if streaming else handler


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
