"""The checkpoint archive: a tar in the layout CRI-O, containerd and Podman share (checkpointctl
reads it), written atomically, and read back as the hostile input it may be.

Layout (what pycrid writes; README, "Checkpoint and restore"):

    checkpoint/       CRIU's images of the process tree, and its dump.log
    config.dump       JSON: id, name, image, times; under "pycrid" what a restore needs
    spec.dump         JSON: the container as an OCI runtime spec
    rootfs-diff.tar   the container's file system changes (rootfsdiff.py)
    deleted.files     JSON list of the files the container deleted from its image
    stats-dump        CRIU's statistics of the dump

Reading accepts exactly these names (plus network.status and dump.log, which other engines
write, ignored), regular files only, each once, within size limits; it writes each file with
O_EXCL|O_NOFOLLOW into a fresh directory. So an archive cannot reach outside that directory (no
``..``, absolute names, links or devices) nor fill the disk past the limits.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from runtime.errors import Internal, InvalidArgument, ResourceExhausted

IMAGES_DIR = "checkpoint"
CONFIG_DUMP = "config.dump"
SPEC_DUMP = "spec.dump"
ROOTFS_DIFF = "rootfs-diff.tar"
DELETED_FILES = "deleted.files"
STATS_DUMP = "stats-dump"
TOP_LEVEL = (CONFIG_DUMP, SPEC_DUMP, ROOTFS_DIFF, DELETED_FILES, STATS_DUMP)
_IGNORED = ("network.status", "dump.log")  # other engines' files, not read
REQUIRED = (CONFIG_DUMP, SPEC_DUMP, ROOTFS_DIFF, f"{IMAGES_DIR}/inventory.img", f"{IMAGES_DIR}/pstree.img")
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")

MAX_ARCHIVE_BYTES = 16 << 30
MAX_ENTRIES = 100_000
MAX_METADATA_BYTES = 4 << 20  # config.dump, spec.dump, deleted.files
_CHUNK = 1 << 20


def write_archive(work_dir: str, location: str) -> None:
    """Tars ``work_dir`` (laid out as above) to ``location``: a temporary name beside it, synced,
    then renamed, so ``location`` never holds half an archive."""
    directory, name = os.path.split(location)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        # 0600: the archive holds the container's memory, secrets and all.
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as out:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_entry(IMAGES_DIR, tarfile.DIRTYPE, 0o700))
                images = os.path.join(work_dir, IMAGES_DIR)
                for image in sorted(os.listdir(images)):
                    _add_file(tar, os.path.join(images, image), f"{IMAGES_DIR}/{image}")
                for top in TOP_LEVEL:
                    if os.path.exists(os.path.join(work_dir, top)):
                        _add_file(tar, os.path.join(work_dir, top), top)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, location)
    except BaseException:
        _unlink(temporary)
        raise
    _fsync_dir(directory)


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, int(time.time())
    return info


def _add_file(tar: tarfile.TarFile, path: str, name: str) -> None:
    with open(path, "rb") as f:
        tar.addfile(_entry(name, tarfile.REGTYPE, 0o600, os.fstat(f.fileno()).st_size), f)


def read_archive(path: str, dest: str) -> None:
    """Checks the archive at ``path`` and unpacks it into the existing, empty directory ``dest``;
    InvalidArgument if it is not a checkpoint archive. The caller removes ``dest`` on error."""
    what = f"checkpoint archive {path}"
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise InvalidArgument(f"{what}: cannot open it: {e.strerror}") from e
    with f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"{what}: not a regular file")
        if st.st_size > MAX_ARCHIVE_BYTES:
            raise InvalidArgument(f"{what}: {st.st_size} bytes, more than the {MAX_ARCHIVE_BYTES} allowed")
        os.mkdir(os.path.join(dest, IMAGES_DIR), 0o700)
        with _opened_dir(dest) as dest_fd:
            seen = _unpack(f, dest_fd, what)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        raise InvalidArgument(f"{what}: missing {', '.join(missing)}")


def _unpack(f: BinaryIO, dest_fd: int, what: str) -> set[str]:
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=f, mode="r|") as tar:
            for count, member in enumerate(tar, 1):
                if count > MAX_ENTRIES:
                    raise InvalidArgument(f"{what}: more than {MAX_ENTRIES} entries")
                name = _checked_name(member, what)
                if name is None:
                    continue
                if name in seen:
                    raise InvalidArgument(f"{what}: {name} appears twice")
                seen.add(name)
                if name in (CONFIG_DUMP, SPEC_DUMP, DELETED_FILES) and member.size > MAX_METADATA_BYTES:
                    raise InvalidArgument(f"{what}: {name} is {member.size} bytes, more than {MAX_METADATA_BYTES}")
                _write(tar, member, name, dest_fd, what)
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every header otherwise
    except tarfile.TarError as e:
        raise InvalidArgument(f"{what}: not a valid tar: {e}") from e
    return seen


def _checked_name(member: tarfile.TarInfo, what: str) -> str | None:
    """The entry's clean name, None for an entry to skip; InvalidArgument for anything else."""
    name = member.name.removeprefix("./").rstrip("/") if member.isdir() else member.name.removeprefix("./")
    if name == IMAGES_DIR and member.isdir():
        return None
    if not member.isreg() or member.issparse():  # a sparse one would unpack to more than the archive's size
        raise InvalidArgument(f"{what}: {member.name!r:.200} is not a regular file (links, devices, sparse "
                              "files and directories other than checkpoint/ are refused)")
    if name in TOP_LEVEL:
        return name
    if name in _IGNORED:
        return None
    directory, _, base = name.partition("/")
    if directory == IMAGES_DIR and _IMAGE_NAME.fullmatch(base) and base not in (".", ".."):
        return name
    raise InvalidArgument(f"{what}: unexpected entry {member.name!r:.200}")


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, dest_fd: int, what: str) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise InvalidArgument(f"{what}: {name} has no content")
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dest_fd)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
    except OSError as e:
        cls = ResourceExhausted if e.errno in (errno.ENOSPC, errno.EDQUOT) else Internal
        raise cls(f"{what}: unpacking {name}: {e}") from e


def read_small(directory: str, name: str) -> bytes:
    """One of the unpacked metadata files (their size was checked while unpacking)."""
    with open(os.path.join(directory, name), "rb") as f:
        return f.read(MAX_METADATA_BYTES + 1)


@contextmanager
def _opened_dir(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    with _opened_dir(path or ".") as fd:
        os.fsync(fd)
