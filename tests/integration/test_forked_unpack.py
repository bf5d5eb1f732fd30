"""Layers unpacked in fork-server children behave as in-process: good layers land, hostile ones are
refused with the same error class (InvalidArgument) and leave nothing. Each test runs both ways:
in a child, and in the agent as a tiny layer is; a layer past the size limit goes to a child."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.image import testimages as ti
from runtime.image.pipefeed import ReaderGone, feed, layer_pipe
from runtime.image.unpack import FollowedLayer
from runtime.process import unpackclient as forked
from runtime.process.client import ForkServer, connect_or_start
from runtime.process.unpackclient import ForkedUnpacker

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServer]:
    server = connect_or_start(str(tmp_path / "fork.sock"), str(tmp_path / "fork.log"))
    yield server
    server.shutdown()


@pytest.fixture(params=["child", "agent"])
def unpacker(request: pytest.FixtureRequest, server: ForkServer, monkeypatch: pytest.MonkeyPatch) -> ForkedUnpacker:
    if request.param == "child":
        monkeypatch.setattr(forked, "IN_AGENT_BYTES", -1)
    else:
        monkeypatch.setattr(server, "spawn", lambda *a, **k: pytest.fail("a tiny layer went to a child"))
    return ForkedUnpacker(server)


def blob(tmp_path: Path, entries: list) -> tuple[str, str, str]:
    tar = ti.layer_tar(entries)
    data = ti.compress(tar, "gzip")
    path = tmp_path / "blob"
    path.write_bytes(data)
    return str(path), "sha256:" + hashlib.sha256(data).hexdigest(), "sha256:" + hashlib.sha256(tar).hexdigest()


def test_a_good_layer_lands(unpacker: ForkedUnpacker, tmp_path: Path) -> None:
    path, digest, diff_id = blob(tmp_path, [ti.directory("etc"), ti.file("etc/motd", b"hello\n", mode=0o640)])
    dest = tmp_path / "fs"
    dest.mkdir()
    unpacker(path, GZIP, str(dest), layer=digest, diff_id=diff_id, progress=lambda n: None)
    assert (dest / "etc/motd").read_bytes() == b"hello\n"
    assert (dest / "etc/motd").stat().st_mode & 0o777 == 0o640


def test_a_hostile_layer_is_invalid_argument(unpacker: ForkedUnpacker, tmp_path: Path) -> None:
    path, digest, diff_id = blob(tmp_path, [ti.file("../escaped", b"x")])
    dest = tmp_path / "fs"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="escaped"):
        unpacker(path, GZIP, str(dest), layer=digest, diff_id=diff_id, progress=lambda n: None)
    assert not (tmp_path / "escaped").exists()


def test_a_wrong_diff_id_is_invalid_argument(unpacker: ForkedUnpacker, tmp_path: Path) -> None:
    path, digest, _ = blob(tmp_path, [ti.file("a", b"a")])
    dest = tmp_path / "fs"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="does not match"):
        unpacker(path, GZIP, str(dest), layer=digest, diff_id="sha256:" + "0" * 64, progress=lambda n: None)


def test_a_layer_past_the_limit_goes_to_a_child(server: ForkServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[str] = []
    spawn = server.spawn
    monkeypatch.setattr(server, "spawn", lambda kind, spec, **kw: spawned.append(kind) or spawn(kind, spec, **kw))
    random = os.urandom(forked.IN_AGENT_BYTES + 1)  # incompressible: the blob stays past the limit
    path, digest, diff_id = blob(tmp_path, [ti.file("random", random)])
    dest = tmp_path / "fs"
    dest.mkdir()
    ForkedUnpacker(server)(path, GZIP, str(dest), layer=digest, diff_id=diff_id, progress=lambda n: None)
    assert spawned == ["unpack_layer"] and (dest / "random").read_bytes() == random


def write_slowly(data: bytes, pipe: int) -> threading.Thread:
    """A download standing in: ``data`` written into the pipe piece by piece, the pipe then closed."""

    def write() -> None:
        try:
            feed((data[i:i + (256 << 10)] for i in range(0, len(data), 256 << 10)), pipe, lambda: time.sleep(0.01))
        finally:
            os.close(pipe)

    return threading.Thread(target=write)


def follow(server: ForkServer, dest: Path, digest: str, diff_id: str) -> tuple[FollowedLayer, int]:
    """A followed layer and the write end of its pipe."""
    read_end, write_end = layer_pipe()
    try:
        return ForkedUnpacker(server).follow(read_end, GZIP, str(dest), layer=digest, diff_id=diff_id), write_end
    finally:
        os.close(read_end)


def test_a_followed_layer_lands(server: ForkServer, tmp_path: Path) -> None:
    random = os.urandom(2 << 20)
    path, digest, diff_id = blob(tmp_path, [ti.directory("d"), ti.file("d/random", random)])
    dest = tmp_path / "fs"
    dest.mkdir()
    followed, pipe = follow(server, dest, digest, diff_id)
    writer = write_slowly(Path(path).read_bytes(), pipe)
    writer.start()
    writer.join()
    followed.finish()
    assert (dest / "d/random").read_bytes() == random


def test_a_followed_layer_whose_download_fails_stops(server: ForkServer, tmp_path: Path) -> None:
    path, digest, diff_id = blob(tmp_path, [ti.file("random", os.urandom(1 << 20))])
    dest = tmp_path / "fs"
    dest.mkdir()
    followed, pipe = follow(server, dest, digest, diff_id)
    writer = write_slowly(Path(path).read_bytes()[:1 << 19], pipe)
    writer.start()
    writer.join()
    followed.abort()  # returns once the child found the stream cut off
    written = dest / "random"
    size = written.stat().st_size
    time.sleep(0.2)
    assert size < (1 << 20) and written.stat().st_size == size


def test_a_followed_layer_lands_when_its_download_ends_before_the_child_starts(
        server: ForkServer, tmp_path: Path) -> None:
    # A small blob may be in the pipe whole, and the pipe closed, before the child reads a byte.
    random = os.urandom(64 << 10)
    path, digest, diff_id = blob(tmp_path, [ti.file("random", random)])
    read_end, write_end = layer_pipe()
    feed([Path(path).read_bytes()], write_end, lambda: pytest.fail("the pipe is full"))
    os.close(write_end)
    dest = tmp_path / "fs"
    dest.mkdir()
    try:
        followed = ForkedUnpacker(server).follow(read_end, GZIP, str(dest), layer=digest, diff_id=diff_id)
    finally:
        os.close(read_end)
    followed.finish()
    assert (dest / "random").read_bytes() == random


def test_a_followed_layer_refused_early_stops_its_download(server: ForkServer, tmp_path: Path) -> None:
    # More than the pipe holds comes after the refused entry: the writer learns that the child
    # stopped reading (no other process holds the pipe's read end), and the child says why.
    path, digest, diff_id = blob(tmp_path, [ti.file("../../escape", b"x"), ti.file("big", os.urandom(4 << 20))])
    dest = tmp_path / "fs"
    dest.mkdir()
    followed, pipe = follow(server, dest, digest, diff_id)
    data = Path(path).read_bytes()
    try:
        with pytest.raises(ReaderGone):
            feed([data[i:i + (64 << 10)] for i in range(0, len(data), 64 << 10)], pipe,
                 lambda: pytest.fail("the child neither reads nor closes its end"))
    finally:
        os.close(pipe)
    with pytest.raises(InvalidArgument, match="escapes the layer root"):
        followed.stopped()
    assert os.listdir(dest) == []
