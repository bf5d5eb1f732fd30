from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from runtime.errors import InvalidArgument
from runtime.image import testimages as ti
from runtime.image.digest import sha256_digest
from runtime.image.testing import RecordingFileOps
from runtime.image import unpack as unpack_module
from runtime.image.unpack import apply_layer

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER = "sha256:" + "1" * 64


def unpack(dest: str, entries: list, fileops: RecordingFileOps, compression: str = "none",
           diff_id: str | None = None) -> str:
    tar = ti.layer_tar(entries)
    os.makedirs(dest)
    blob = io.BufferedReader(io.BytesIO(ti.compress(tar, compression)))
    apply_layer(blob, OCI_TAR, dest, layer=LAYER, diff_id=diff_id or sha256_digest(tar),
                fileops=fileops, progress=lambda n: None)
    return dest


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_every_compression_is_detected_by_magic(tmp_path, fileops, compression) -> None:
    fs = unpack(str(tmp_path / "fs"), [ti.file("hello", b"world")], fileops, compression)
    assert open(os.path.join(fs, "hello"), "rb").read() == b"world"


def test_entry_types_and_metadata(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [
        ti.directory("etc", mode=0o750, uid=3, gid=4, mtime=1000),
        ti.file("etc/app.conf", b"x=1", mode=0o640, uid=1000, gid=1001, mtime=2000,
                xattrs={"user.note": "hi", "security.capability": "\x01\x02"}),
        ti.file("bin/su", b"ELF", mode=0o4755),
        ti.symlink("bin/sh", "/bin/busybox", mtime=3000),
        ti.symlink("abs", "../../../../etc/shadow"),  # any link target is fine: never followed here
        ti.hardlink("bin/su2", "bin/su"),
        ti.device("dev/null", tarfile.CHRTYPE, 1, 3),
        ti.device("dev/sda", tarfile.BLKTYPE, 8, 0, mode=0o660),
        ti.device("run/fifo", tarfile.FIFOTYPE),
        ti.file("/rooted", b"leading slash is relative to the root"),
    ], fileops)
    st = os.lstat(f"{fs}/etc")
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime == 1000
    st = os.lstat(f"{fs}/etc/app.conf")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime, open(f"{fs}/etc/app.conf").read()) == (0o640, 2000, "x=1")
    assert stat.S_IMODE(os.lstat(f"{fs}/bin/su").st_mode) == 0o4755
    assert os.readlink(f"{fs}/bin/sh") == "/bin/busybox" and os.lstat(f"{fs}/bin/sh").st_mtime == 3000
    assert os.readlink(f"{fs}/abs") == "../../../../etc/shadow"
    assert os.lstat(f"{fs}/bin/su2").st_ino == os.lstat(f"{fs}/bin/su").st_ino
    assert os.path.exists(f"{fs}/rooted")
    assert fileops.of("lchown")[f"{fs}/etc/app.conf"] == (1000, 1001)
    assert fileops.of("lchown")[f"{fs}/etc"] == (3, 4)
    assert fileops.of("mknod")[f"{fs}/dev/null"] == (stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert fileops.of("mknod")[f"{fs}/dev/sda"] == (stat.S_IFBLK | 0o600, os.makedev(8, 0))
    assert fileops.of("mknod")[f"{fs}/run/fifo"][0] == stat.S_IFIFO | 0o600
    assert stat.S_IMODE(os.lstat(f"{fs}/dev/sda").st_mode) == 0o660
    xattrs = [c[2:] for c in fileops.calls if c[0] == "setxattr" and c[1] == f"{fs}/etc/app.conf"]
    assert sorted(xattrs) == [("security.capability", b"\x01\x02"), ("user.note", b"hi")]


def test_owner_is_set_before_mode_so_setuid_survives(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [ti.file("su", b"", mode=0o4755, uid=0)], fileops)
    assert [c[0] for c in fileops.calls if c[1] == f"{fs}/su"] == ["lchown"]
    assert os.lstat(f"{fs}/su").st_mode & stat.S_ISUID


def test_whiteouts_become_overlay_whiteouts(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [
        ti.directory("etc"),
        ti.file("etc/.wh.motd"),
        ti.directory("var/cache"),
        ti.file("var/cache/.wh..wh..opq"),
        ti.file("var/cache/kept", b"new"),
        ti.file(".wh..wh.plnk"),  # aufs metadata, ignored
    ], fileops)
    assert fileops.of("mknod")[f"{fs}/etc/motd"] == (stat.S_IFCHR, os.makedev(0, 0))
    assert fileops.of("lchown")[f"{fs}/etc/motd"] == (0, 0)
    assert fileops.of("setxattr")[f"{fs}/var/cache"] == ("trusted.overlay.opaque", b"y")
    assert sorted(os.listdir(f"{fs}/var/cache")) == ["kept"]
    assert not any(n.startswith(".wh.") for _, _, files in os.walk(fs) for n in files)


def test_later_entries_replace_earlier_ones(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [
        ti.file("x", b"old"), ti.file("x", b"new"),
        ti.directory("d"), ti.file("d/child"), ti.file("d", b"now a file"),
        ti.file("l", b""), ti.symlink("l", "x"),
    ], fileops)
    assert open(f"{fs}/x").read() == "new"
    assert open(f"{fs}/d").read() == "now a file"
    assert os.readlink(f"{fs}/l") == "x"


def test_overlay_xattrs_from_the_layer_are_ignored(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [ti.directory("d"),
                                       ti.file("f", xattrs={"trusted.overlay.redirect": "/etc"})], fileops)
    assert all(c[0] != "setxattr" for c in fileops.calls), fs


def test_read_only_directories_get_their_mode_after_their_children(tmp_path, fileops) -> None:
    fs = unpack(str(tmp_path / "fs"), [ti.directory("ro", mode=0o555), ti.file("ro/f", b"1")], fileops)
    assert stat.S_IMODE(os.lstat(f"{fs}/ro").st_mode) == 0o555
    assert open(f"{fs}/ro/f").read() == "1"


def test_diff_id_mismatch_is_refused(tmp_path, fileops) -> None:
    with pytest.raises(InvalidArgument, match="does not match diff ID"):
        unpack(str(tmp_path / "fs"), [ti.file("a")], fileops, "gzip", diff_id="sha256:" + "0" * 64)


def test_corrupt_compressed_stream_is_refused(tmp_path, fileops) -> None:
    os.makedirs(tmp_path / "fs")
    data = ti.compress(ti.layer_tar([ti.file("a", b"x" * 5000)]), "gzip")
    blob = io.BufferedReader(io.BytesIO(data[:40] + b"\0" * 20 + data[60:]))
    with pytest.raises(InvalidArgument, match=f"layer {LAYER}"):
        apply_layer(blob, OCI_TAR, str(tmp_path / "fs"), layer=LAYER, diff_id="sha256:" + "0" * 64,
                    fileops=fileops, progress=lambda n: None)


def test_an_invalid_deflate_block_is_a_corrupt_stream(tmp_path, fileops) -> None:
    os.makedirs(tmp_path / "fs")
    data = bytearray(ti.compress(ti.layer_tar([ti.file("a", b"x" * 5000)]), "gzip"))
    data[10] = 0xFF  # the first block's header, after gzip's 10 bytes: block type 3, which is reserved
    with pytest.raises(InvalidArgument, match=f"layer {LAYER}: corrupt compressed stream"):
        apply_layer(io.BufferedReader(io.BytesIO(bytes(data))), OCI_TAR, str(tmp_path / "fs"), layer=LAYER,
                    diff_id="sha256:" + "0" * 64, fileops=fileops, progress=lambda n: None)


def test_unknown_layer_media_type_is_refused(tmp_path, fileops) -> None:
    os.makedirs(tmp_path / "fs")
    with pytest.raises(InvalidArgument, match="unsupported media type"):
        apply_layer(io.BufferedReader(io.BytesIO(b"")), "application/vnd.oci.image.layer.v1.tar+encrypted",
                    str(tmp_path / "fs"), layer=LAYER, diff_id=LAYER, fileops=fileops, progress=lambda n: None)


@pytest.mark.parametrize("uid", [2**32 - 1, 2**32 + 5])
def test_owner_ids_that_would_wrap_are_refused(tmp_path, fileops, uid) -> None:
    with pytest.raises(InvalidArgument, match="out of range"):
        unpack(str(tmp_path / "fs"), [ti.file("a", uid=uid)], fileops)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_file_of_many_pieces_lands_whole(tmp_path, fileops, compression) -> None:
    # Larger than several copy pieces and not a multiple of one, nor of a tar record.
    data = os.urandom(5 * unpack_module._CHUNK + 12345)
    fs = unpack(str(tmp_path / "fs"), [ti.file("big", data), ti.file("after", b"tail")], fileops, compression)
    assert open(os.path.join(fs, "big"), "rb").read() == data
    assert open(os.path.join(fs, "after"), "rb").read() == b"tail"
