"""ImageManager: the image API the CRI ImageService calls (pull, status, list, remove, fs info).

Pulls of the same reference share one pull. ``pull`` returns the Image whose ``id`` (the config
digest) is what PullImageResponse.image_ref should carry, as containerd does.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import FailedPrecondition, NotFound
from runtime.image.archive import read_archive
from runtime.image.auth import Credentials
from runtime.image.config import user_identity
from runtime.image.content import ContentStore
from runtime.image.fileops import FileOps, HostFileOps
from runtime.image.gc_guard import GcGuard
from runtime.image.hosts import RegistryHost, endpoints
from runtime.image.layers import Fetch, ensure_snapshots
from runtime.image.manifest import MAX_DOCUMENT, Descriptor, Platform, host_platform
from runtime.image.progress import PullProgress
from runtime.image.pull import fetch_metadata, layer_fetcher
from runtime.image.reference import Reference, image_id, parse_reference
from runtime.image.registry import RegistryClient
from runtime.image.resolve import ImageContent, read_image
from runtime.image.singleflight import SingleFlight
from runtime.image.snapshots import SnapshotStore
from runtime.image.store import Image, ImageStore
from runtime.image.transport import HttpTransport, Transport
from runtime.image.unpack import InProcessUnpacker, Unpacker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FsUsage:
    """The image filesystem as ImageFsInfo reports it: content blobs plus unpacked snapshots."""

    timestamp_ns: int
    mountpoint: str
    used_bytes: int
    inodes_used: int


@dataclass(frozen=True)
class GcResult:
    blobs: tuple[str, ...]
    snapshots: tuple[str, ...]


# The ``list`` method shadows the builtin inside the class body.
Images = list[Image]
Paths = list[str]


class ImageManager:
    def __init__(self, root: str, hosts: Mapping[str, RegistryHost] | None = None,
                 transport_factory: Callable[[], Transport] = HttpTransport, *,
                 fileops: FileOps | None = None, unpacker: Unpacker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], int] = time.time_ns, stall_timeout: float = 60.0,
                 max_concurrent_downloads: int = 3, platform: Platform | None = None) -> None:
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._root = root
        self._hosts = dict(hosts or {})
        for domain in self._hosts:
            endpoints(domain, self._hosts)  # a bad mirror URL fails at start, not at the first pull
        self._transport_factory = transport_factory
        self._fileops = fileops or HostFileOps()
        # The agent unpacks in forked processes (runtime/process/unpacker.py): in-process threads
        # share one interpreter lock and would not use every CPU.
        self._unpack = unpacker or InProcessUnpacker(self._fileops)
        self._clock = clock
        self._wall_clock = wall_clock
        self._stall_timeout = stall_timeout
        self._workers = max_concurrent_downloads
        self._platform = platform or host_platform()
        self._content = ContentStore(root)
        self._content.discard_partial_ingests()
        self._snapshots = SnapshotStore(root)
        self._images = ImageStore(root)
        self._pulls: SingleFlight[Image] = SingleFlight()
        self._guard = GcGuard()

    def pull(self, ref: str, auth: Credentials | None = None, pinned: bool = False) -> Image:
        """Pulls, unpacks and records ``ref``; concurrent pulls of one reference share the work
        (and the first caller's credentials: the node has one image store for all callers)."""
        parsed = parse_reference(ref)
        try:
            image = self._pulls.do(parsed.full, lambda: self._pull(parsed, auth, pinned))
            if pinned and not image.pinned:  # we joined a pull started without pinning
                image = self._images.add(dataclasses.replace(image, pinned=True))
            return image
        finally:
            # A moved tag may have orphaned an older image; a failed pull leaves layers no image
            # references. Either way the disk should hold only what images use.
            self._collect(wait=False)

    def status(self, ref: str) -> Image | None:
        """The image named by an ID (with or without ``sha256:``), a tag or a digest reference."""
        return self._lookup(ref)

    def list(self, filter_ref: str | None = None) -> Images:
        if filter_ref:
            image = self._lookup(filter_ref)
            return [image] if image else []
        return self._images.list()

    def remove(self, ref: str, in_use: Callable[[str], str | None] = lambda image_id: None) -> None:
        """Removes the image with all its names; absent is fine. FailedPrecondition while
        ``in_use(image_id)`` names a container that uses it (as its rootfs or an image volume):
        containers' overlays use the snapshots directly.

        containerd lets the image go and keeps the content until its containers do; CRI-O refuses,
        as here. The kubelet's image GC copes with either: it never picks an image that a container's
        status names (its image_id, or an image volume's Mount.image), and a refusal of one it did
        pick is logged while it goes on with the next. Refusing keeps what ListImages and
        ImageFsInfo report true: the disk holds no image that is not listed."""
        image = self._lookup(ref)
        if image is None:
            return
        user = in_use(image.id)
        if user is not None:
            raise FailedPrecondition(f'image "{ref}" ({image.id}) is in use by container {user}; '
                                     "remove the container first")
        self._images.remove(image.id)
        self._collect(wait=False)

    def lowerdirs(self, ref: str) -> Paths:
        """Overlay lowerdirs of the image, top layer first."""
        image = self._lookup(ref)
        if image is None:
            raise NotFound(f'image "{ref}": not present')
        return self._snapshots.lowerdirs(image.chain_ids)

    def config_document(self, image_id: str) -> dict[str, Any]:
        """The full OCI image config of an image, for verbose ImageStatus."""
        # A JSON object: parse_config (config.py) checked that before the image was recorded.
        document: dict[str, Any] = json.loads(self._content.read(image_id, MAX_DOCUMENT))
        return document

    def fs_info(self) -> FsUsage:
        content_bytes, content_inodes = self._content.usage()
        snap_bytes, snap_inodes = self._snapshots.usage()
        return FsUsage(self._wall_clock(), self._root, content_bytes + snap_bytes,
                       content_inodes + snap_inodes)

    def import_archive(self, path: str) -> Images:
        """Imports an OCI image layout tarball or a ``docker save`` tarball; returns the images."""
        imported: Images = []
        with self._guard.pulling():
            for entry in read_archive(path, self._content):
                what = f'image archive "{path}"'
                content = read_image(self._content, entry.target, entry.media_type, self._platform, what)
                tags = tuple(t for t in (n.tagged() for n in entry.names) if t)
                imported.append(self._install(content, tags, (), False, _already_stored(path), what))
        self._collect(wait=False)
        return imported

    def gc(self) -> GcResult:
        """Deletes blobs and snapshots that no image references (waits for running pulls)."""
        return self._collect(wait=True) or GcResult((), ())

    def _pull(self, ref: Reference, auth: Credentials | None, pinned: bool) -> Image:
        what = f'image "{ref.full}"'
        log.info("%s: pulling", what)
        with self._guard.pulling():
            client = RegistryClient(ref, self._hosts, self._transport_factory(), auth, self._stall_timeout)
            target, media_type = fetch_metadata(client, ref, self._content, self._platform)
            content = read_image(self._content, target, media_type, self._platform, what)
            tag = ref.tagged()
            image = self._install(content, (tag,) if tag else (), (ref.with_digest(target),), pinned,
                                  layer_fetcher(client, self._content), what)
        log.info("%s: pulled as %s", what, image.id)
        return image

    def _install(self, content: ImageContent, tags: tuple[str, ...], digests: tuple[str, ...],
                 pinned: bool, fetch: Fetch, what: str) -> Image:
        layers = content.manifest.layers
        progress = PullProgress(what, len(layers), sum(layer.size for layer in layers),
                                self._stall_timeout, self._clock)
        chains = ensure_snapshots(layers, content.config.diff_ids, fetch=fetch, content=self._content,
                                  snapshots=self._snapshots, unpack=self._unpack, progress=progress,
                                  workers=self._workers, poll=min(1.0, self._stall_timeout / 4))
        progress.finish()
        uid, username = user_identity(content.config.config.user)
        return self._images.add(Image(
            id=content.image_id, repo_tags=tags, repo_digests=digests, size=content.size, uid=uid,
            username=username, pinned=pinned, config=content.config.config, chain_ids=chains,
            blobs=content.blobs))

    def _lookup(self, ref: str) -> Image | None:
        if (iid := image_id(ref)) is not None:
            return self._images.get(iid)
        parsed = parse_reference(ref)
        # A digest wins over a tag: containerd records name@digest, not name:tag@digest.
        return self._images.find(parsed.with_digest(parsed.digest) if parsed.digest
                                 else f"{parsed.name}:{parsed.tag}")

    def _collect(self, wait: bool) -> GcResult | None:
        with self._guard.collecting(wait) as allowed:
            if not allowed:
                log.debug("image gc skipped: a pull is running")
                return None
            images = self._images.list()
            keep_blobs = _union(i.blobs for i in images)
            blobs = tuple(d for d, _ in list(self._content.list()) if d not in keep_blobs)
            for digest in blobs:
                self._content.delete(digest)
            snapshots = tuple(self._snapshots.remove_unreferenced(_union(i.chain_ids for i in images)))
            if blobs or snapshots:
                log.info("image gc: removed %d blobs and %d snapshots", len(blobs), len(snapshots))
            return GcResult(blobs, snapshots)


def _union(groups: Iterable[Iterable[str]]) -> set[str]:
    return {item for group in groups for item in group}


def _already_stored(path: str) -> Fetch:
    def fetch(layer: Descriptor, _progress: PullProgress) -> None:
        raise NotFound(f'image archive "{path}": layer {layer.digest} is not in the archive')
    return fetch
