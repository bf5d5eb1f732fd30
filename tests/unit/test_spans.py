"""runtime/spans.py: phases are recorded only inside a recording, and helpers' marks become the
steps between them, in time order."""
from __future__ import annotations

import pytest

from runtime import spans
from runtime.spans import Span


def test_a_phase_outside_a_recording_records_nothing() -> None:
    with spans.phase("lost"):
        pass
    spans.add_marks(0.0, [["x", 1.0]], 2.0, "end")
    with spans.recording() as recorded:
        pass
    assert recorded == []


def test_phases_are_recorded_in_the_order_they_end_also_when_they_raise() -> None:
    with spans.recording() as recorded:
        with spans.phase("outer"):
            with spans.phase("inner"):
                pass
        with pytest.raises(ValueError), spans.phase("failing"):
            raise ValueError
    assert [s.name for s in recorded] == ["inner", "outer", "failing"]
    assert all(s.seconds >= 0 for s in recorded)


def test_marks_delimit_steps_in_time_order_and_the_rest_is_the_last() -> None:
    # Two processes' marks interleave: the starter's and init's arrive in separate lists.
    marks = [["starter.fork", 10.5], ["init.rootfs", 12.0], ["init.cgroup", 11.0], ["starter.exec", 13.0]]
    assert spans.between(10.0, marks, 13.25, "reply") == [
        Span("starter.fork", 0.5), Span("init.cgroup", 0.5), Span("init.rootfs", 1.0), Span("starter.exec", 1.0),
        Span("reply", 0.25)]


def test_malformed_marks_are_left_out() -> None:
    assert spans.between(1.0, [["ok", 2.0], ["no time"], "junk", ["bad", "x"]], 3.0, "end") == [
        Span("ok", 1.0), Span("end", 1.0)]
    assert spans.between(1.0, None, 1.5, "end") == [Span("end", 0.5)]


def test_a_mark_before_the_start_counts_as_nothing_not_negative() -> None:
    assert spans.between(5.0, [["early", 4.0]], 6.0, "end") == [Span("early", 0.0), Span("end", 1.0)]
