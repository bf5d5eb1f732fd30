"""The content store: blobs named by their verified sha256 under ``<root>/content/blobs/sha256/``.

A blob is written to an ingest file, verified (size and digest) while it streams, fsynced, and
renamed into place, so a blob path only ever holds complete, verified content.
"""
from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Iterable, Iterator

from runtime.errors import Internal, NotFound, ResourceExhausted
from runtime.image.digest import hex_part, validate_digest, verified
from runtime.store.checkpoint import fsync_dir

log = logging.getLogger(__name__)


class ContentStore:
    def __init__(self, root: str) -> None:
        self._blobs = os.path.join(root, "content", "blobs", "sha256")
        self._ingest = os.path.join(root, "content", "ingest")
        os.makedirs(self._blobs, mode=0o700, exist_ok=True)
        os.makedirs(self._ingest, mode=0o700, exist_ok=True)

    def discard_partial_ingests(self) -> None:
        """Removes ingest files left by a crash; called once at start, before any pull."""
        for name in os.listdir(self._ingest):
            os.unlink(os.path.join(self._ingest, name))

    def path(self, digest: str) -> str:
        return os.path.join(self._blobs, hex_part(validate_digest(digest, "content blob")))

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def open(self, digest: str) -> io.BufferedReader:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as e:
            raise NotFound(f"content blob {digest}: not in the content store") from e

    def read(self, digest: str, limit: int) -> bytes:
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ResourceExhausted(f"content blob {digest}: larger than {limit} bytes")
        return data

    def write(self, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        """Stores ``chunks`` as ``digest``; InvalidArgument, and nothing stored, unless both match."""
        validate_digest(digest, "content blob")
        what = f"content blob {digest}"
        self._ingest_chunks(verified(chunks, digest, size, what), what, digest)

    def add(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Stores content whose digest is not known beforehand (archive import); returns (digest, size)."""
        return self._ingest_chunks(chunks, "content blob")

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def list(self) -> Iterator[tuple[str, int]]:
        for entry in os.scandir(self._blobs):
            yield f"sha256:{entry.name}", entry.stat(follow_symlinks=False).st_size

    def usage(self) -> tuple[int, int]:
        """(bytes on disk, inodes) of all blobs."""
        used = inodes = 0
        for entry in os.scandir(self._blobs):
            used += entry.stat(follow_symlinks=False).st_blocks * 512
            inodes += 1
        return used, inodes

    def _ingest_chunks(self, chunks: Iterable[bytes], what: str, digest: str = "") -> tuple[str, int]:
        """Stores ``chunks``: as ``digest`` when given (``chunks`` verify themselves, digest.verified),
        else as the digest they have."""
        tmp = os.path.join(self._ingest, uuid.uuid4().hex)
        h = None if digest else hashlib.sha256()
        written = 0
        try:
            with open(tmp, "xb") as f:
                for chunk in chunks:
                    written += len(chunk)
                    if h is not None:
                        h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if h is not None:
                digest = "sha256:" + h.hexdigest()
            os.rename(tmp, self.path(digest))
        except OSError as e:
            _unlink_quietly(tmp)
            cls = ResourceExhausted if e.errno == errno.ENOSPC else Internal
            raise cls(f"{what}: writing {tmp} failed: {e}") from e
        except BaseException:
            _unlink_quietly(tmp)
            raise
        try:
            fsync_dir(self._blobs)
        except OSError as e:
            raise Internal(f"{what}: fsync of {self._blobs} failed: {e}") from e
        return digest, written


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove ingest file %s: %s", path, e)
