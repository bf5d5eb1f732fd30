"""Manifests and indexes (OCI and Docker schema 2): media types, parsing, platform choice. Pure."""
from __future__ import annotations

import json
import platform as host
from dataclasses import dataclass

from runtime.errors import InvalidArgument, NotFound
from runtime.image.digest import validate_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)

CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json",
                "application/vnd.docker.container.image.v1+json")
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)

MAX_DOCUMENT = 4 << 20  # manifests, indexes and configs are small; a bigger one is hostile


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...]


def host_platform() -> Platform:
    machine = host.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm"}.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine, "")
    return Platform("linux", arch, variant)


def parse_document(media_type: str, body: bytes, what: str) -> Manifest | Index:
    """Parses a manifest or an index; ``media_type`` is the HTTP Content-Type, the body's own wins."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise InvalidArgument(f"{what}: manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: manifest is not a JSON object")
    kind = doc.get("mediaType") or media_type.split(";")[0].strip()
    if kind in _SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidArgument(f"{what}: Docker schema 1 manifests are not supported; re-push the image")
    if kind in INDEX_TYPES or (not kind and "manifests" in doc):
        return Index(tuple(_descriptor(d, what) for d in _list(doc, "manifests", what)))
    if kind in MANIFEST_TYPES or (not kind and "layers" in doc):
        config = _descriptor(doc.get("config"), what)
        if config.media_type not in CONFIG_TYPES:
            raise InvalidArgument(f"{what}: unsupported config media type {config.media_type!r}")
        layers = tuple(_descriptor(d, what) for d in _list(doc, "layers", what))
        for layer in layers:
            if layer.media_type not in LAYER_TYPES:
                raise InvalidArgument(f"{what}: layer {layer.digest} has unsupported media type "
                                      f"{layer.media_type!r}")
        return Manifest(config, layers)
    raise InvalidArgument(f"{what}: unsupported manifest media type {kind!r}")


def select_platform(index: Index, want: Platform, what: str) -> Descriptor:
    """The first manifest for ``want``; the variant matters only on arm (as in containerd)."""
    for desc in index.manifests:
        p = desc.platform
        if p is None or p.os != want.os or p.architecture != want.architecture:
            continue
        if want.architecture == "arm" and want.variant and p.variant and p.variant != want.variant:
            continue
        return desc
    have = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
    raise NotFound(f"{what}: no manifest for {want} in the index (available: {have})")


def _list(doc: dict[str, object], key: str, what: str) -> list[object]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise InvalidArgument(f"{what}: manifest field {key!r} is not a list")
    return value


def _descriptor(raw: object, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{what}: descriptor is not an object")
    size = raw.get("size")
    media_type = raw.get("mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(media_type, str):
        raise InvalidArgument(f"{what}: descriptor {raw.get('digest')!r} has no valid size or mediaType")
    plat = raw.get("platform")
    platform = None
    if isinstance(plat, dict):
        platform = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                            str(plat.get("variant", "")))
    return Descriptor(media_type, validate_digest(raw.get("digest"), what), size, platform)
