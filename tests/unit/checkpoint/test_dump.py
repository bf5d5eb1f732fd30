"""Checkpointer: CRIU's dump (a stand-in here) and the container's files, into an archive at the
location whole or not at all, within the request's timeout; its work directory always removed."""
from __future__ import annotations

import json
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.checkpoint import metadata
from runtime.checkpoint.dump import Checkpointer, Subject, check_location
from runtime.checkpoint.testing import FakeCriu
from runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from runtime.process.initspec import POD, BindMount, InitSpec, Namespaces
from tests.unit.checkpoint.fakeproc import fake_proc

IMAGE = "sha256:" + "a" * 64


def subject(tmp_path: Path, **changes: object) -> Subject:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "count").write_text("41\n")
    spec = InitSpec(id="c1", args=("sh", "-c", "count"), env=(), cwd="/", lowerdirs=("/l",), upperdir=str(upper),
                    workdir="/w", rootfs="/r", namespaces=Namespaces(net="/run/s/netns", ipc="/run/s/ipcns"),
                    mounts=(BindMount("/run/s/hosts", "/etc/hosts", is_file=True),))
    return Subject("c1", "counter", 42, replace(spec, **changes), IMAGE, "busybox:1", "busybox@sha256:x",  # type: ignore[arg-type]
                   1, metadata.Process(("sh", "-c", "count")), {"io.container.manager": "pycrid"})


@pytest.fixture
def places(tmp_path: Path) -> tuple[str, Path, Path]:
    work_parent, out = tmp_path / "container", tmp_path / "out"
    work_parent.mkdir()
    out.mkdir()
    return fake_proc(tmp_path, 42), work_parent, out


def test_writes_the_archive_and_removes_its_work(tmp_path: Path, places) -> None:
    proc, work_parent, out = places
    criu = FakeCriu()
    Checkpointer(lambda: criu, proc, clock=lambda: 5).checkpoint(
        subject(tmp_path), str(out / "c.tar"), str(work_parent), 30)
    assert os.listdir(work_parent) == [] and os.listdir(out) == ["c.tar"]
    args, work_dir, timeout = criu.runs[0]
    assert args[:3] == ["dump", "--tree", "42"] and "mnt[/etc/hosts]:/etc/hosts" in args
    assert 0 < timeout <= 30 and work_dir.endswith("/checkpoint")
    with tarfile.open(out / "c.tar") as tar:
        names = set(tar.getnames())
        config = json.load(tar.extractfile("config.dump"))  # type: ignore[arg-type]
        diff = tarfile.open(fileobj=tar.extractfile("rootfs-diff.tar"))  # type: ignore[arg-type]
        assert diff.extractfile("count").read() == b"41\n"  # type: ignore[union-attr]
    assert {"checkpoint/inventory.img", "checkpoint/dump.log", "spec.dump", "deleted.files", "stats-dump"} <= names
    parsed = metadata.parse(json.dumps(config).encode())
    assert parsed.mounts == ("/etc/hosts",) and parsed.stdio[1:] == ("pipe:[11]", "pipe:[12]")
    assert parsed.checkpointed_at == 5 and parsed.image_id == IMAGE


@pytest.mark.parametrize(("criu", "error", "words"), [
    (FakeCriu(fail="tcp: established connection"), FailedPrecondition, "tcp: established connection"),
    (FakeCriu(too_slow=True), DeadlineExceeded, "did not finish"),
])
def test_a_failed_or_late_dump_leaves_nothing(tmp_path: Path, places, criu, error, words) -> None:
    proc, work_parent, out = places
    with pytest.raises(error, match=words):
        Checkpointer(lambda: criu, proc).checkpoint(subject(tmp_path), str(out / "c.tar"), str(work_parent), 30)
    assert os.listdir(work_parent) == [] and os.listdir(out) == []


def test_a_timeout_spent_before_the_archive_leaves_nothing(tmp_path: Path, places, monkeypatch) -> None:
    proc, work_parent, out = places
    clock = iter([0.0, 0.0, 100.0])  # the deadline is set, CRIU runs, then the clock has run out
    monkeypatch.setattr("runtime.checkpoint.dump.time.monotonic", lambda: next(clock, 100.0))
    with pytest.raises(DeadlineExceeded, match="before writing"):
        Checkpointer(lambda: FakeCriu(), proc).checkpoint(subject(tmp_path), str(out / "c.tar"), str(work_parent), 10)
    assert os.listdir(work_parent) == [] and os.listdir(out) == []


def test_unsupported_containers_are_refused_before_criu_runs(tmp_path: Path, places) -> None:
    proc, work_parent, out = places
    criu = FakeCriu()
    for changes, words in (({"tty": True}, "TTY"), ({"namespaces": Namespaces(net="/n", pid=POD)}, "PID namespace")):
        with pytest.raises(FailedPrecondition, match=words):
            Checkpointer(lambda: criu, proc).checkpoint(subject(tmp_path / str(len(words)), **changes),
                                                        str(out / "c.tar"), str(work_parent), 10)
    with pytest.raises(FailedPrecondition, match="not running"):
        Checkpointer(lambda: criu, proc).checkpoint(replace(subject(tmp_path / "gone"), pid=43),
                                                    str(out / "c.tar"), str(work_parent), 10)
    assert criu.runs == [] and os.listdir(work_parent) == [] and os.listdir(out) == []


def test_locations(tmp_path: Path) -> None:
    check_location(str(tmp_path / "c.tar"))
    for location, words in (("", "absolute"), ("c.tar", "absolute"), (str(tmp_path / "x" / "c.tar"), "does not exist"),
                            (str(tmp_path), "is a directory")):
        with pytest.raises(InvalidArgument, match=words):
            check_location(location)
