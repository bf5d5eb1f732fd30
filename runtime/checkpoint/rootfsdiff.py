"""The container's file system changes in a checkpoint: rootfs-diff.tar and deleted.files.

rootfs-diff.tar is the container's overlay upper directory written as an image layer: deleted
files (overlay whiteouts, 0/0 character devices) become ``.wh.<name>`` entries and opaque
directories a ``.wh..wh..opq`` entry, so the restore applies it with the image unpacker
(runtime/image/unpack.py), which already treats a tar as the hostile input it may be and turns
those entries back into overlay whiteouts in the new container's upper directory. deleted.files
lists the deleted paths as CRI-O and Podman write it (checkpointctl shows it); the restore does not
need it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from runtime.image.fileops import HostFileOps
from runtime.image.unpack import apply_layer

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
_OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class Diff:
    digest: str  # sha256 of the tar, as the restore checks it
    deleted: tuple[str, ...]  # absolute paths in the container


class _Hashing:
    """A write-only file that hashes what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)


def write_diff(upper: str, path: str) -> Diff:
    """Writes ``upper`` (an overlay upper directory) to a new tar at ``path``."""
    deleted: list[str] = []
    with open(path, "xb") as out:
        hashing = _Hashing(out)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for directory, dirs, files in os.walk(upper):
                dirs.sort()
                rel_dir = os.path.relpath(directory, upper)
                if rel_dir != "." and _opaque(directory):
                    tar.addfile(_empty(os.path.join(rel_dir, ".wh..wh..opq")))
                for name in sorted(dirs + files):
                    full, rel = os.path.join(directory, name), os.path.normpath(os.path.join(rel_dir, name))
                    st = os.lstat(full)
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                        tar.addfile(_empty(os.path.join(rel_dir, f".wh.{name}")))
                        deleted.append("/" + rel)
                    elif not stat.S_ISSOCK(st.st_mode):  # a socket is not a file to carry over
                        tar.add(full, arcname=rel, recursive=False)
        out.flush()
        os.fsync(out.fileno())
    return Diff(f"sha256:{hashing.sha.hexdigest()}", tuple(deleted))


def deleted_files(diff: Diff) -> bytes:
    return json.dumps(list(diff.deleted)).encode()


def apply_diff(path: str, upper: str, digest: str) -> None:
    """Unpacks a checkpoint's rootfs-diff.tar into the new, empty upper directory; InvalidArgument
    for a hostile or corrupt tar or one whose digest is not ``digest``."""
    with open(path, "rb") as blob:
        apply_layer(blob, LAYER_TYPE, upper, layer="rootfs-diff.tar of the checkpoint", diff_id=digest,
                    fileops=HostFileOps(), progress=lambda _: None)


def _opaque(directory: str) -> bool:
    try:
        return os.getxattr(directory, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _empty(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(os.path.normpath(name))
    info.mode = 0o600
    return info
