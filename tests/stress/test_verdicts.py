"""The verdict rule and the kill schedule: pure, no root."""
from __future__ import annotations

import pytest

from tests.stress.chaos import schedule
from tests.stress.verdicts import Answer, Window, verdict

ID = "ab" * 32


def answer(code: str, message: str, method: str = "ContainerStatus", at: float = 10.0) -> Answer:
    return Answer(method, code, message, at, at + 0.1)


@pytest.mark.parametrize(("reply", "subjects", "expected"), [
    (answer("OK", ""), (), None),
    (answer("NOT_FOUND", f"ContainerStatus: container {ID!r} not found"), (ID,), None),
    (answer("NOT_FOUND", f"StopContainer: container {ID} not found", "StopContainer"), (ID,),
     "NOT_FOUND is not documented for StopContainer"),
    (answer("UNKNOWN", "ContainerStatus: what"), (ID,), "UNKNOWN is never documented"),
    (answer("UNKNOWN", "Exception calling application: boom"), (ID,),
     "UNKNOWN made by gRPC, not by pycrid's error boundary"),
    (answer("INTERNAL", f"ContainerStatus: container {ID[:12]}: EBUSY"), (ID,), None),
    (answer("INTERNAL", "ContainerStatus: rmdir failed"), (ID,), "INTERNAL without naming the object"),
    (answer("INTERNAL", f"ContainerStatus: internal error: KeyError: {ID}"), (ID,),
     "INTERNAL from an exception no layer mapped"),
    (answer("INTERNAL", "ListContainers: sandbox x: setns failed", "ListContainers"), (),
     "INTERNAL from a call about no one object (one failure failed it all)"),
    (answer("INVALID_ARGUMENT", 'ContainerStatus: Traceback (most recent call last):\n  File "/x.py", line 3'),
     (ID,), "a Python traceback in the message"),
    (answer("UNAVAILABLE", "failed to connect to all addresses"), (),
     "no answer (UNAVAILABLE from gRPC) outside any outage"),
    (answer("UNAVAILABLE", "ContainerStatus: fork server gone"), (), "UNAVAILABLE outside any outage"),
])
def test_verdict_outside_outages(reply: Answer, subjects: tuple[str, ...], expected: str | None) -> None:
    assert verdict(reply, subjects, [Window(0.0, 5.0, "agent killed")]) == expected


def test_unavailable_is_fine_when_the_call_overlaps_an_outage() -> None:
    outage = [Window(10.05, 12.0, "agent killed")]
    for message in ("Socket closed", "ContainerStatus: fork server gone"):
        assert verdict(answer("UNAVAILABLE", message, at=10.0), (ID,), outage) is None
        assert verdict(answer("UNAVAILABLE", message, at=12.5), (ID,), outage) is not None
    assert verdict(answer("DEADLINE_EXCEEDED", "Deadline Exceeded", at=11.0), (ID,), outage) is None


def test_schedule_is_seeded_spread_and_checked() -> None:
    plan = schedule(7, 600, 3, ("agent", "forkserver"))
    assert plan == schedule(7, 600, 3, ("agent", "forkserver"))
    assert plan != schedule(8, 600, 3, ("agent", "forkserver"))
    assert len({k.at_call for k in plan}) == 3 and all(60 <= k.at_call < 540 for k in plan)
    assert schedule(7, 600, 3, ()) == []
    with pytest.raises(ValueError, match="unknown kill targets"):
        schedule(7, 600, 3, ("shim",))
