"""Where a call's time goes: named phases timed inside one CRI call.

cri/instrument.py opens a recording around each call; the runtime's code marks its steps with
``phase("name")``, and a helper process's own timings (a pod monitor's start, init's set-up) come
back in its answer as marks and are added with ``add_marks``. Outside a recording (tests, start-up, background
threads) a phase costs a context-variable read and records nothing. The recorded phases become
``pycrid_rpc_phase_duration_seconds{method,phase}`` and, with PYCRID_TRACE set, one log line per
call (metrics/own.py, cri/instrument.py).
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    name: str
    seconds: float


_recording: contextvars.ContextVar[list[Span] | None] = contextvars.ContextVar("spans", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[Span]]:
    """Collects the phases of the calls made inside it, in the order they ended."""
    spans: list[Span] = []
    token = _recording.set(spans)
    try:
        yield spans
    finally:
        _recording.reset(token)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Times what runs inside it as phase ``name`` of the current recording, if any; a phase that
    raises is recorded too (a failed step's time is still the call's)."""
    spans = _recording.get()
    if spans is None:
        yield
        return
    started = time.monotonic()
    try:
        yield
    finally:
        spans.append(Span(name, time.monotonic() - started))


def add_marks(since: float, marks: object, until: float, last: str) -> None:
    """Adds the phases helpers marked as they went: ``marks`` are [name, when that step ended]
    (CLOCK_MONOTONIC, which every process of the host shares), each step lasting from the mark
    before it (the first from ``since``); what is left until ``until`` is phase ``last``."""
    spans = _recording.get()
    if spans is not None:
        spans.extend(between(since, marks, until, last))


def between(since: float, marks: object, until: float, last: str) -> list[Span]:
    """The steps the ``marks`` (see add_marks) delimit, in time order. Marks that are malformed
    (a helper of another build) are left out."""
    valid = sorted((float(m[1]), str(m[0])) for m in (marks if isinstance(marks, list) else [])
                   if isinstance(m, (list, tuple)) and len(m) == 2 and isinstance(m[1], (int, float)))
    steps, previous = [], since
    for ended, name in [*valid, (until, last)]:
        steps.append(Span(name, max(0.0, ended - previous)))
        previous = max(previous, ended)
    return steps
