from __future__ import annotations

from runtime.container.logs import FULL, PARTIAL, LineSplitter, record, timestamp


def collect(max_line: int = 8) -> tuple[LineSplitter, list[tuple[bytes, bytes]]]:
    out: list[tuple[bytes, bytes]] = []
    return LineSplitter(lambda tag, text: out.append((tag, text)), max_line), out


def test_record_format_golden() -> None:
    ns = 1_475_713_029_669_794_202
    assert timestamp(ns) == b"2016-10-06T00:17:09.669794202Z"
    assert record(ns, b"stdout", FULL, b"hello") == b"2016-10-06T00:17:09.669794202Z stdout F hello\n"
    assert timestamp(1_000_000_000) == b"1970-01-01T00:00:01.000000000Z"


def test_lines_across_reads() -> None:
    s, out = collect()
    s.feed(b"ab")
    s.feed(b"c\nde\n\nf")
    assert out == [(FULL, b"abc"), (FULL, b"de"), (FULL, b"")]
    s.close()
    assert out[-1] == (PARTIAL, b"f"), "no newline was written: the record must not claim one"


def test_long_lines_split_into_partials() -> None:
    s, out = collect(max_line=4)
    s.feed(b"0123456789\nxy")
    assert out == [(PARTIAL, b"0123"), (PARTIAL, b"4567"), (FULL, b"89")]
    s.feed(b"zwv")
    assert out[-1] == (PARTIAL, b"xyzw")
    s.close()
    assert out[-1] == (PARTIAL, b"v")


def test_exactly_max_line_is_one_full_record() -> None:
    s, out = collect(max_line=4)
    s.feed(b"0123\n")
    assert out == [(FULL, b"0123")]


def test_empty_close_emits_nothing() -> None:
    s, out = collect()
    s.close()
    assert out == []
