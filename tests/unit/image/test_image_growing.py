"""A blob read while it is written: the reader waits at the end of the data, ends once told the
download is whole (after reading what it left), and is cut off when told it failed."""
from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from runtime.image.growing import CutOff, GrowingFile


def test_the_reader_follows_the_writer_to_the_end(tmp_path: Path) -> None:
    ingest = tmp_path / "ingest"
    pieces = [os.urandom(100_000) for _ in range(5)]
    f = ingest.open("wb")
    whole = threading.Event()

    def write() -> None:
        for piece in pieces:
            time.sleep(0.01)  # the reader gets ahead and waits
            f.write(piece)
            f.flush()
        f.close()
        whole.set()

    reader = io.BufferedReader(GrowingFile(str(ingest), whole.wait))
    writer = threading.Thread(target=write)
    writer.start()
    data = reader.read()
    writer.join()
    assert data == b"".join(pieces)


def test_a_failed_download_cuts_the_stream_off(tmp_path: Path) -> None:
    ingest = tmp_path / "ingest"
    ingest.write_bytes(b"partial")

    def failed(seconds: float) -> bool:
        raise CutOff("the download failed")

    reader = GrowingFile(str(ingest), failed)
    assert reader.read(100) == b"partial"
    with pytest.raises(CutOff):
        reader.read(100)
