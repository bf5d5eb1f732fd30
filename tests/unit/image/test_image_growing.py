"""A blob read while it is written: the reader waits at the end of the data, ends once the blob is
renamed into place, and is cut off when the ingest file goes without a blob."""
from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from runtime.image.growing import CutOff, GrowingFile


def never_gone(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def test_the_reader_follows_the_writer_to_the_rename(tmp_path: Path) -> None:
    ingest, blob = tmp_path / "ingest", tmp_path / "blob"
    pieces = [os.urandom(100_000) for _ in range(5)]
    f = ingest.open("wb")

    def write() -> None:
        for piece in pieces:
            time.sleep(0.01)  # the reader gets ahead and waits
            f.write(piece)
            f.flush()
        f.close()
        ingest.rename(blob)

    reader = io.BufferedReader(GrowingFile(str(ingest), str(blob), never_gone))
    writer = threading.Thread(target=write)
    writer.start()
    data = reader.read()
    writer.join()
    assert data == b"".join(pieces)


def test_an_ingest_gone_without_a_blob_cuts_the_stream_off(tmp_path: Path) -> None:
    ingest, blob = tmp_path / "ingest", tmp_path / "blob"
    ingest.write_bytes(b"partial")
    reader = GrowingFile(str(ingest), str(blob), never_gone)
    ingest.unlink()
    assert reader.read(100) == b"partial"
    with pytest.raises(CutOff):
        reader.read(100)


def test_a_reader_whose_requester_is_gone_stops_waiting(tmp_path: Path) -> None:
    ingest = tmp_path / "ingest"
    ingest.write_bytes(b"")
    reader = GrowingFile(str(ingest), str(tmp_path / "blob"), lambda seconds: True)
    with pytest.raises(CutOff, match="requester"):
        reader.read(100)
