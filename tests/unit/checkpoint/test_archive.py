"""The checkpoint archive: written whole or not at all, and read back as hostile input."""
from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.checkpoint import archive
from runtime.errors import InvalidArgument

GOOD = {"checkpoint/inventory.img": b"inv", "checkpoint/pstree.img": b"tree", "checkpoint/pages-1.img": b"p" * 5000,
        "config.dump": b"{}", "spec.dump": b"{}", "rootfs-diff.tar": b"\0" * 1024, "deleted.files": b"[]",
        "stats-dump": b"s"}


def work_dir(base: Path) -> Path:
    work = base / "work"
    for name, data in GOOD.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    return work


def tar_of(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def good_entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [regular(name, data) for name, data in GOOD.items()]


def test_written_archive_reads_back_whole(tmp_path: Path) -> None:
    location = tmp_path / "out" / "checkpoint.tar"
    location.parent.mkdir()
    archive.write_archive(str(work_dir(tmp_path)), str(location))
    assert stat.S_IMODE(location.stat().st_mode) == 0o600
    assert os.listdir(location.parent) == ["checkpoint.tar"]  # no temporary left beside it
    with tarfile.open(location) as tar:
        assert tar.getnames()[0] == "checkpoint" and tar.getmember("checkpoint").isdir()
        assert set(tar.getnames()) == {"checkpoint", *GOOD}
    dest = tmp_path / "dest"
    dest.mkdir()
    archive.read_archive(str(location), str(dest))
    for name, data in GOOD.items():
        assert (dest / name).read_bytes() == data


def test_a_failed_write_leaves_nothing_at_the_location_nor_beside_it(tmp_path: Path) -> None:
    work = work_dir(tmp_path)
    (work / "checkpoint" / "pages-1.img").unlink()
    (work / "checkpoint" / "pages-1.img").mkdir()  # unreadable as a file: the write fails half-way
    location = tmp_path / "out" / "checkpoint.tar"
    location.parent.mkdir()
    location.write_bytes(b"an older archive")
    with pytest.raises(IsADirectoryError):
        archive.write_archive(str(work), str(location))
    assert os.listdir(location.parent) == ["checkpoint.tar"]
    assert location.read_bytes() == b"an older archive"


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, b""


def hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, b""


def device(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, b""


def directory(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


@pytest.mark.parametrize(("extra", "words"), [
    (regular("../escaped"), "unexpected entry '../escaped'"),
    (regular("checkpoint/../../escaped"), "unexpected entry"),
    (regular("/etc/escaped"), "unexpected entry '/etc/escaped'"),
    (regular("checkpoint/sub/core.img"), "unexpected entry"),
    (regular("checkpoint/.."), "unexpected entry"),
    (regular("surprise.txt"), "unexpected entry 'surprise.txt'"),
    (symlink("checkpoint/core-9.img", "/etc/shadow"), "not a regular file"),
    (symlink("checkpoint", "/tmp"), "not a regular file"),
    (hardlink("checkpoint/core-9.img", "/etc/shadow"), "not a regular file"),
    (device("checkpoint/core-9.img"), "not a regular file"),
    (directory("checkpoint/sub"), "not a regular file"),
    (regular("config.dump", b"{}"), "config.dump appears twice"),
])
def test_hostile_entries_are_refused_and_nothing_lands_outside(tmp_path: Path, extra, words: str) -> None:
    path = tar_of(tmp_path / "a.tar", [*good_entries(), extra])
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(InvalidArgument) as err:
        archive.read_archive(str(path), str(dest))
    assert words in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "deep"]
    assert os.listdir(tmp_path / "deep") == ["dest"]
    assert not Path("/etc/escaped").exists()


def test_names_with_a_dot_slash_prefix_are_read(tmp_path: Path) -> None:
    path = tar_of(tmp_path / "a.tar", [regular(f"./{name}", data) for name, data in GOOD.items()])
    (tmp_path / "dest").mkdir()
    archive.read_archive(str(path), str(tmp_path / "dest"))
    assert (tmp_path / "dest" / "checkpoint" / "pstree.img").read_bytes() == b"tree"


@pytest.mark.parametrize("missing", archive.REQUIRED)
def test_a_missing_required_file_is_refused(tmp_path: Path, missing: str) -> None:
    path = tar_of(tmp_path / "a.tar", [e for e in good_entries() if e[0].name != missing])
    (tmp_path / "dest").mkdir()
    with pytest.raises(InvalidArgument, match=f"missing {missing}"):
        archive.read_archive(str(path), str(tmp_path / "dest"))


def test_size_and_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tar_of(tmp_path / "a.tar", good_entries())
    for limit, value, words in (("MAX_METADATA_BYTES", 1, "more than 1"),
                                ("MAX_ENTRIES", 3, "more than 3 entries"),
                                ("MAX_ARCHIVE_BYTES", 100, "more than the 100 allowed")):
        dest = tmp_path / f"dest-{limit}-{value}"
        dest.mkdir()
        with monkeypatch.context() as m:
            m.setattr(archive, limit, value)
            with pytest.raises(InvalidArgument, match=words):
                archive.read_archive(str(path), str(dest))


def test_what_is_not_a_tar_or_not_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "junk.tar").write_bytes(b"\x01" * 2048)
    os.mkfifo(tmp_path / "fifo.tar")
    for name, words in (("junk.tar", "not a valid tar"), ("dest", "Is a directory"),
                        ("nothing.tar", "cannot open it")):
        with pytest.raises(InvalidArgument, match=words):
            archive.read_archive(str(tmp_path / name), str(tmp_path / "dest"))
    fd = os.open(tmp_path / "fifo.tar", os.O_RDWR | os.O_NONBLOCK)  # a writer, so opening it cannot block
    try:
        with pytest.raises(InvalidArgument, match="not a regular file"):
            archive.read_archive(str(tmp_path / "fifo.tar"), str(tmp_path / "dest"))
    finally:
        os.close(fd)
