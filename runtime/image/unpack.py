"""Applying one layer tar into an empty snapshot directory that overlayfs can use as a lowerdir.

The tar is only parsed by tarfile; every file system change is made here with *at calls relative
to directory fds opened without following links (see rootpath.py), so no entry can land outside
the snapshot. OCI whiteouts become overlay whiteouts: ``.wh.<name>`` is a 0/0 character device
``<name>``, ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory.
"""
from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from typing import Any, BinaryIO, NoReturn, Protocol, cast

import zstandard
from isal import igzip, isal_zlib

from runtime.errors import Internal, InvalidArgument, ResourceExhausted
from runtime.image.fileops import FileOps
from runtime.image.manifest import LAYER_TYPES
from runtime.image.rootpath import clean_path, open_dir, open_root

log = logging.getLogger(__name__)

# File data is copied in pieces this small: a piece of 64 KiB or more is a fresh allocation that
# malloc maps (or trims back) every time, and in a freshly forked unpack child the page faults of
# 1 MiB pieces cost more system time than the decompression (40 MB layer: ~30k faults, 150 ms;
# with 32 KiB ~700 faults, 95 ms).
_CHUNK = 32 << 10
_MAX_ID = 2**32 - 2  # 2^32-1 means "unchanged" to chown; larger ids wrap (CVE-2024-40635)
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_AUFS_META = ".wh..wh."
_XATTR = "SCHILY.xattr."
_DEVICE_TYPES = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}

Progress = Callable[[int], None]
# A corrupt deflate stream. The class isal raises: its stub declares an instance.
_INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def apply_layer(blob: io.BufferedReader[Any], media_type: str, dest: str, *, layer: str, diff_id: str,
                fileops: FileOps, progress: Progress) -> None:
    """Unpacks ``blob`` into the empty directory ``dest`` and checks its uncompressed digest.

    InvalidArgument on a corrupt or hostile layer; the caller removes ``dest`` on any error.
    """
    what = f"layer {layer}"
    if media_type not in LAYER_TYPES:
        raise InvalidArgument(f"{what}: unsupported media type {media_type!r}")
    reader = _HashingReader(_decompressed(blob), what, progress)
    root_fd = open_root(dest)
    dirs: dict[tuple[str, ...], tuple[int, int]] = {}
    try:
        try:
            # Stream mode only ever calls read(); the cast tells the type checker so.
            tar = tarfile.open(fileobj=cast(BinaryIO, reader), mode="r|", encoding="utf-8",
                               errors="surrogateescape")
            while (member := tar.next()) is not None:
                try:
                    _apply_entry(root_fd, tar, member, what, fileops, dirs)
                except OSError as e:
                    cls = ResourceExhausted if e.errno in (errno.ENOSPC, errno.EDQUOT) else Internal
                    raise cls(f"{what}: entry {member.name!r}: {e}") from e
                except (ValueError, OverflowError) as e:  # NUL in a link name, absurd mtimes
                    raise InvalidArgument(f"{what}: entry {member.name!r}: {e}") from e
                # Stream mode keeps every header in this (untyped) list; nothing here needs them.
                tar.members.clear()  # type: ignore[attr-defined]
        except tarfile.TarError as e:
            raise InvalidArgument(f"{what}: not a valid tar stream: {e}") from e
        reader.drain()
        if reader.digest != diff_id:
            raise InvalidArgument(f"{what}: uncompressed digest {reader.digest} does not match "
                                  f"diff ID {diff_id} in the image config")
        _finish_dirs(root_fd, dirs, what)
    finally:
        os.close(root_fd)


def _decompressed(blob: io.BufferedReader[Any]) -> _Readable:
    # The magic decides, as in containerd: some registries label plain tars as gzip.
    magic = blob.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        # ISA-L's inflate, about twice zlib's speed here (a busybox layer's 3 MB: 4 ms, not 10).
        return igzip.IGzipFile(fileobj=blob, mode="rb")  # type: ignore[no-untyped-call]  # unannotated
    if magic == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True)
    return blob


class _HashingReader:
    """The uncompressed stream, hashed as it is read (the diff ID), with errors made domain errors."""

    def __init__(self, raw: _Readable, what: str, progress: Progress) -> None:
        self._raw = raw
        self._what = what
        self._progress = progress
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._raw.read(n)
        except (OSError, EOFError, _INFLATE_ERROR, zstandard.ZstdError) as e:
            raise InvalidArgument(f"{self._what}: corrupt compressed stream: {e}") from e
        self._hash.update(data)
        self._progress(len(data))
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _apply_entry(root_fd: int, tar: tarfile.TarFile, m: tarfile.TarInfo, what: str, fileops: FileOps,
                 dirs: dict[tuple[str, ...], tuple[int, int]]) -> None:
    entry = f"{what}: entry {m.name!r}"
    parts = clean_path(m.name, entry)
    uid, gid = _ids(m, entry)
    mtime = int(m.mtime * 1_000_000_000)
    if not parts:  # "./": the snapshot root itself
        if not m.isdir():
            raise InvalidArgument(f"{entry}: the layer root must be a directory")
        fileops.lchown(root_fd, ".", uid, gid)
        dirs[parts] = (m.mode & 0o7777, mtime)
        return
    base = parts[-1]
    fd = open_dir(root_fd, parts[:-1], create=True, what=entry)
    try:
        if base.startswith(_WHITEOUT):
            _whiteout(fd, base, entry, fileops)
        elif m.isdir():
            existing = _lstat(fd, base)
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(fd, base)
                os.mkdir(base, 0o700, dir_fd=fd)  # final mode and mtime once its children exist
            fileops.lchown(fd, base, uid, gid)
            _xattrs(fd, base, m, fileops)
            dirs[parts] = (m.mode & 0o7777, mtime)
        elif m.isreg():
            _remove(fd, base)
            _write_file(fd, base, tar, m, uid, gid, fileops)
            os.utime(base, ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)
        elif m.issym():
            _remove(fd, base)
            os.symlink(m.linkname, base, dir_fd=fd)  # any target: it is never followed here
            fileops.lchown(fd, base, uid, gid)
            _xattrs(fd, base, m, fileops)
            os.utime(base, ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)
        elif m.islnk():
            _hardlink(root_fd, fd, parts, m.linkname, entry)
        elif m.type in _DEVICE_TYPES:
            _remove(fd, base)
            fileops.mknod(fd, base, _DEVICE_TYPES[m.type] | 0o600, os.makedev(m.devmajor, m.devminor))
            fileops.lchown(fd, base, uid, gid)
            os.chmod(base, m.mode & 0o7777, dir_fd=fd)  # a device node, just made: nothing to follow
            _xattrs(fd, base, m, fileops)
            os.utime(base, ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)
        else:
            raise InvalidArgument(f"{entry}: unsupported tar entry type {m.type!r}")
    finally:
        os.close(fd)


def _whiteout(fd: int, base: str, entry: str, fileops: FileOps) -> None:
    if base == _OPAQUE:
        fileops.setxattr(fd, ".", "trusted.overlay.opaque", b"y")
    elif base.startswith(_AUFS_META):
        log.debug("%s: skipping aufs metadata", entry)
    else:
        name = base[len(_WHITEOUT):]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"{entry}: whiteout of {name!r} would not stay in its directory")
        _remove(fd, name)
        fileops.mknod(fd, name, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        fileops.lchown(fd, name, 0, 0)


def _write_file(fd: int, base: str, tar: tarfile.TarFile, m: tarfile.TarInfo, uid: int, gid: int,
                fileops: FileOps) -> None:
    def opener(path: str, flags: int) -> int:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)

    src = tar.extractfile(m)
    assert src is not None  # a regular member always has data
    with open(base, "xb", opener=opener) as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
        out.flush()  # a write after chmod would clear setuid bits again
        fileops.lchown(fd, base, uid, gid)
        os.fchmod(out.fileno(), m.mode & 0o7777)  # after chown, which clears setuid bits
        _xattrs(fd, base, m, fileops)  # after chown, which clears security.capability


def _hardlink(root_fd: int, fd: int, parts: tuple[str, ...], linkname: str, entry: str) -> None:
    target = clean_path(linkname, f"{entry}: hard link target {linkname!r}")
    if not target:
        raise InvalidArgument(f"{entry}: hard link to the layer root")
    if target == parts:
        return
    # Most links point into their own directory (busybox's applets): that one is open already.
    same_dir = target[:-1] == parts[:-1]
    target_fd = fd if same_dir else open_dir(root_fd, target[:-1], create=False, what=f"{entry}: hard link target")
    try:
        _remove(fd, parts[-1])
        os.link(target[-1], parts[-1], src_dir_fd=target_fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError as e:
        raise InvalidArgument(f"{entry}: hard link target {linkname!r} is not in the layer") from e
    except PermissionError as e:  # a directory, or a file we may not link
        raise InvalidArgument(f"{entry}: cannot hard link to {linkname!r}: {e}") from e
    finally:
        if not same_dir:
            os.close(target_fd)


def _xattrs(fd: int, base: str, m: tarfile.TarInfo, fileops: FileOps) -> None:
    for key, value in m.pax_headers.items():
        if not key.startswith(_XATTR):
            continue
        name = key[len(_XATTR):]
        if name.startswith("trusted.overlay."):
            # Only unpacking decides overlay semantics; a layer must not smuggle redirects in.
            log.warning("%s: ignoring xattr %s", m.name, name)
            continue
        fileops.setxattr(fd, base, name, value.encode("utf-8", "surrogateescape"))


def _ids(m: tarfile.TarInfo, entry: str) -> tuple[int, int]:
    if not (0 <= m.uid <= _MAX_ID and 0 <= m.gid <= _MAX_ID):
        raise InvalidArgument(f"{entry}: owner {m.uid}:{m.gid} is out of range")
    return m.uid, m.gid


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(fd: int, name: str) -> None:
    """Makes room for a later entry of the same name (the last one in the tar wins)."""
    st = _lstat(fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=fd)  # fd-relative and symlink-safe since 3.11
    else:
        os.unlink(name, dir_fd=fd)


def _finish_dirs(root_fd: int, dirs: dict[tuple[str, ...], tuple[int, int]], what: str) -> None:
    # Children before parents, so a read-only parent cannot block its children's updates.
    for parts, (mode, mtime) in reversed(dirs.items()):
        try:
            fd = open_dir(root_fd, parts, create=False, what=what)
        except InvalidArgument:
            continue  # replaced by a later entry
        try:
            os.chmod(fd, mode)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)


class FollowedLayer(Protocol):
    """A layer being unpacked from its download as that comes (Unpacker.follow)."""

    def finish(self) -> None:
        """Says the download is whole (the blob verified) and waits for the unpack; raises its
        error (apply_layer's)."""

    def abort(self) -> None:
        """Says the download failed and waits until the unpack has stopped writing."""

    def stopped(self) -> NoReturn:
        """The unpack stopped reading before the download's end: waits for it and raises its
        error, telling it nothing about the download."""


class Unpacker(Protocol):
    """Unpacks the layer blob at `blob` into the empty directory `dest` (apply_layer's contract)."""

    def __call__(self, blob: str, media_type: str, dest: str, *, layer: str, diff_id: str,
                 progress: Progress) -> None: ...

    def follows(self, blob_bytes: int) -> bool:
        """Whether a blob of this size is better unpacked while it downloads (follow())."""

    def follow(self, source: int, media_type: str, dest: str, *, layer: str, diff_id: str) -> FollowedLayer:
        """Starts unpacking into ``dest`` the blob being written to the fd ``source`` (a pipe's read
        end, or a file that grows; the caller keeps and closes its own fd): whole at finish() once
        its end was read, cut off at abort()."""


class InProcessUnpacker:
    def __init__(self, fileops: FileOps) -> None:
        self.fileops = fileops

    def __call__(self, blob: str, media_type: str, dest: str, *, layer: str, diff_id: str,
                 progress: Progress) -> None:
        with open(blob, "rb") as f:
            apply_layer(f, media_type, dest, layer=layer, diff_id=diff_id, fileops=self.fileops,
                        progress=progress)

    def follows(self, blob_bytes: int) -> bool:
        return False  # in the agent's threads the unpack would share the download's interpreter lock

    def follow(self, source: int, media_type: str, dest: str, *, layer: str, diff_id: str) -> FollowedLayer:
        raise NotImplementedError("in-process unpacking reads the stored blob")
