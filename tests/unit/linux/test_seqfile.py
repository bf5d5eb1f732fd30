"""read_whole: regular files of every size around its thresholds come back whole, and a real
record-by-record seq_file longer than a page (/proc/self/maps of this interpreter) does too."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.linux.seqfile import MAX_RECORD, PAGE, read_whole


@pytest.mark.parametrize("size", [0, 1, PAGE - MAX_RECORD - 1, PAGE - MAX_RECORD, PAGE, 65535, 65536,
                                  65537, 200_000])
def test_regular_files_come_back_whole(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert read_whole(fd) == data
        assert read_whole(fd) == data  # again from offset 0 on the same descriptor
    finally:
        os.close(fd)


def test_a_seq_file_longer_than_a_page_comes_back_whole() -> None:
    with open("/proc/self/maps", "rb") as f:
        expected_lines = len(f.read().splitlines())
    fd = os.open("/proc/self/maps", os.O_RDONLY)
    try:
        first = os.pread(fd, 65536, 0)
        text = read_whole(fd)
    finally:
        os.close(fd)
    if len(first) == len(text):
        pytest.skip("maps fit in one read here; nothing to show")
    assert len(first) < PAGE < len(text), "the kernel hands out a page of records per read"
    assert abs(len(text.splitlines()) - expected_lines) <= 2  # the reads themselves may map a page
