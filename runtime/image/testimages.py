"""Images built in memory for tests: layer tars (including hostile ones), configs, manifests, indexes."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zstandard

from runtime.image.digest import sha256_digest
from runtime.image.manifest import OCI_INDEX, OCI_MANIFEST, Platform

Entry = tuple[tarfile.TarInfo, bytes | None]

_LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                "none": "application/vnd.oci.image.layer.v1.tar"}


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000,
          **extra: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, xattrs: Mapping[str, str] | None = None,
         **kw: Any) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode, **kw)
    info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def directory(name: str, mode: int = 0o755, **kw: Any) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode, **kw), None


def symlink(name: str, target: str, **kw: Any) -> Entry:
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw), None


def hardlink(name: str, target: str, **kw: Any) -> Entry:
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw), None


def device(name: str, kind: bytes, major: int = 0, minor: int = 0, mode: int = 0o666) -> Entry:
    return _info(name, kind, mode, devmajor=major, devminor=minor), None


def layer_tar(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(tar, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return tar


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, platform: Platform | None = None) -> dict[str, object]:
        d: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if platform:
            p = {"os": platform.os, "architecture": platform.architecture}
            if platform.variant:
                p["variant"] = platform.variant
            d["platform"] = p
        return d


@dataclass(frozen=True)
class BuiltImage:
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def build_image(layers: Sequence[bytes], compression: str = "gzip", config: Mapping[str, object] | None = None,
                diff_ids: Sequence[str] | None = None, manifest_type: str = OCI_MANIFEST) -> BuiltImage:
    """An image from uncompressed layer tars; ``diff_ids`` overrides the true ones (to lie)."""
    blobs = tuple(Blob(_LAYER_TYPES[compression], compress(t, compression)) for t in layers)
    config_doc = {"architecture": "amd64", "os": "linux", "config": dict(config or {}),
                  "rootfs": {"type": "layers",
                             "diff_ids": list(diff_ids or [sha256_digest(t) for t in layers])}}
    config_blob = Blob("application/vnd.oci.image.config.v1+json", json.dumps(config_doc).encode())
    manifest = {"schemaVersion": 2, "mediaType": manifest_type, "config": config_blob.descriptor(),
                "layers": [b.descriptor() for b in blobs]}
    return BuiltImage(Blob(manifest_type, json.dumps(manifest).encode()), config_blob, blobs)


def build_index(images: Sequence[tuple[BuiltImage, Platform]], media_type: str = OCI_INDEX) -> Blob:
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "manifests": [image.manifest.descriptor(platform) for image, platform in images]}
    return Blob(media_type, json.dumps(doc).encode())
