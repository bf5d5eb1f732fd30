"""Which answers the CRI and pycrid document, per method, and the rule that tells a violation.

An answer is pycrid's own when its message starts with "<Method>: " (cri/instrument.py prefixes
every status it sends); anything else was made by gRPC (a closed socket, a deadline that ran out
on our side, an exception outside the error boundary).

The rule, in order:
1. OK is always fine.
2. A message with a Python traceback in it ("Traceback (most recent call last)", 'File "/...",
   line N') is a violation, whatever the code.
3. gRPC's own UNAVAILABLE or DEADLINE_EXCEEDED is fine only if the call overlapped an outage (the
   agent killed and not yet answering again); any other code from gRPC itself (UNKNOWN from an
   exception that escaped the boundary, CANCELLED, ...) is a violation.
4. pycrid's UNKNOWN is a violation (never documented). pycrid's UNAVAILABLE is fine only during
   an outage (a helper it depends on was killed and has not had time to be replaced).
5. pycrid's INTERNAL is fine only for a genuine runtime failure of the object the call was about:
   not the catch-all "<Method>: internal error: <ExceptionType>: ..." that cri/instrument.py sends
   for an exception no layer mapped, and naming one of the call's subjects (the id or image
   reference in the request, the pod or container name in a config, or the first 12 characters
   of a full id). A call about no one object (a list, Status) has nothing to name: one failing
   pod must not fail it as a whole, so INTERNAL there is a violation.
6. Any other code must be in DOCUMENTED[method].
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')

# Stop/Remove are idempotent in the CRI ("must not return an error if ... already removed") and
# pycrid's DESIGN §5 extends that to IDs it never knew: NOT_FOUND is a violation for them.
_REMOVAL = frozenset({"INVALID_ARGUMENT", "DEADLINE_EXCEEDED"})
_LOOKUP = frozenset({"INVALID_ARGUMENT", "NOT_FOUND"})
_MAKE = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                   "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
_ON_CONTAINER = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION"})

DOCUMENTED: dict[str, frozenset[str]] = {
    "Version": frozenset(), "Status": frozenset(), "RuntimeConfig": frozenset(),
    "ListPodSandbox": frozenset(), "StreamPodSandboxes": frozenset(),
    "ListContainers": frozenset(), "StreamContainers": frozenset(),
    "ListContainerStats": frozenset(), "ListPodSandboxStats": frozenset(),
    "ImageFsInfo": frozenset(),
    "ListImages": frozenset({"INVALID_ARGUMENT"}),  # its filter is an image reference, which can be malformed
    "RunPodSandbox": _MAKE,
    "StopPodSandbox": _REMOVAL, "RemovePodSandbox": _REMOVAL,
    "StopContainer": _REMOVAL, "RemoveContainer": _REMOVAL,
    "PodSandboxStatus": _LOOKUP, "ContainerStatus": _LOOKUP,
    "ContainerStats": _LOOKUP, "PodSandboxStats": _LOOKUP,
    "CreateContainer": _MAKE,
    "StartContainer": _MAKE - {"ALREADY_EXISTS"},
    "ExecSync": _ON_CONTAINER | {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"},
    "UpdateContainerResources": _ON_CONTAINER,
    "ReopenContainerLog": _ON_CONTAINER,
    "PullImage": frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}),
    # A missing image is an empty ImageStatusResponse, and removing one is idempotent.
    "ImageStatus": frozenset({"INVALID_ARGUMENT"}),
    "RemoveImage": frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"}),
}


@dataclass(frozen=True)
class Window:
    """A span (monotonic seconds) during which something was down on purpose."""
    start: float
    end: float
    what: str


@dataclass(frozen=True)
class Answer:
    method: str
    code: str  # grpc.StatusCode name
    message: str
    started: float  # monotonic seconds
    ended: float


def is_own(answer: Answer) -> bool:
    return answer.message.startswith(f"{answer.method}: ")


def during_outage(answer: Answer, windows: Iterable[Window]) -> bool:
    return any(w.start <= answer.ended and answer.started <= w.end for w in windows)


def names_subject(message: str, subjects: Iterable[str]) -> bool:
    return any(s and (s in message or (len(s) == 64 and s[:12] in message)) for s in subjects)


def verdict(answer: Answer, subjects: Iterable[str], windows: Iterable[Window]) -> str | None:
    """None when the answer is documented for its method; otherwise which rule it breaks."""
    code, method = answer.code, answer.method
    if code == "OK":
        return None
    if _TRACEBACK.search(answer.message):
        return "a Python traceback in the message"
    if not is_own(answer):
        if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return None if during_outage(answer, windows) else f"no answer ({code} from gRPC) outside any outage"
        return f"{code} made by gRPC, not by pycrid's error boundary"
    if code == "UNKNOWN":
        return "UNKNOWN is never documented"
    if code == "UNAVAILABLE":
        return None if during_outage(answer, windows) else "UNAVAILABLE outside any outage"
    if code == "INTERNAL":
        if answer.message.startswith(f"{method}: internal error: "):
            return "INTERNAL from an exception no layer mapped"
        if not any(subjects):
            return "INTERNAL from a call about no one object (one failure failed it all)"
        return None if names_subject(answer.message, subjects) else "INTERNAL without naming the object"
    if code not in DOCUMENTED.get(method, frozenset()):
        return f"{code} is not documented for {method}"
    return None
