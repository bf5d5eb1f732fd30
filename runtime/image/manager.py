"""ImageManager: the image API the CRI ImageService calls (pull, status, list, remove, fs info).

Pulls of the same reference share one pull. ``pull`` returns the Image whose ``id`` (the config
digest) is what PullImageResponse.image_ref should carry, as containerd does.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.errors import FailedPrecondition, NotFound
from runtime.image.auth import Credentials
from runtime.image.config import user_identity
from runtime.image.content import ContentStore
from runtime.image.fileops import FileOps, HostFileOps
from runtime.image.gc_guard import GcGuard
from runtime.image.hosts import RegistryHost, endpoints
from runtime.image.layers import Fetch, ensure_snapshots
from runtime.image.manifest import MAX_DOCUMENT, Descriptor, Manifest, Platform, host_platform
from runtime.image.progress import PullProgress
from runtime.image.pull import fetch_config, fetch_manifests, layer_fetcher
from runtime.image.reference import Reference, image_id, parse_reference
from runtime.image.registry import RegistryClient
from runtime.image.resolve import ImageContent, read_image
from runtime.image.singleflight import SingleFlight
from runtime.image.snapshots import SnapshotStore
from runtime.image.store import Image, ImageStore
from runtime.image.transport import HttpTransport, Transport

if TYPE_CHECKING:  # the archive and unpacking code (tarfile, decompressors) loads on first use
    from runtime.image.archive import ArchiveImage
    from runtime.image.unpack import Unpacker

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
                 transport: Transport | None = None, *,
                 fileops: FileOps | None = None, unpacker: Unpacker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], int] = time.time_ns, stall_timeout: float = 60.0,
                 max_concurrent_downloads: int = 3, platform: Platform | None = None) -> None:
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._root = root
        self._hosts = dict(hosts or {})
        for domain in self._hosts:
            endpoints(domain, self._hosts)  # a bad mirror URL fails at start, not at the first pull
        # One for every pull: its idle connections serve the next pull's requests too.
        self._transport = transport or HttpTransport()
        self._fileops = fileops or HostFileOps()
        # The agent unpacks in forked processes (runtime/process/unpackclient.py): in-process threads
        # share one interpreter lock and would not use every CPU.
        self._unpack = unpacker or _in_process(self._fileops)
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
        # Images a container being created uses: it records their ids only at its end, and until
        # then RemoveImage must not take them (leased() and remove() decide under one lock).
        self._leases: collections.Counter[str] = collections.Counter()
        self._lease_lock = threading.Lock()

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
        with self._lease_lock:
            user = in_use(image.id)
            if user is not None:
                raise FailedPrecondition(f'image "{ref}" ({image.id}) is in use by container {user}; '
                                         "remove the container first")
            if self._leases[image.id]:
                raise FailedPrecondition(f'image "{ref}" ({image.id}) is in use by a container being '
                                         "created; remove that container first")
            self._images.remove(image.id)
        self._collect(wait=False)

    @contextlib.contextmanager
    def leased(self, refs: Iterable[str]) -> Iterator[dict[str, Image]]:
        """The images the references name (one absent is left out), kept from remove() until
        the block ends: a container being created records their ids at its end."""
        with self._lease_lock:
            found = {ref: image for ref in refs if (image := self._lookup(ref)) is not None}
            self._leases.update(i.id for i in found.values())
        try:
            yield found
        finally:
            with self._lease_lock:
                self._leases.subtract(i.id for i in found.values())
                self._leases += collections.Counter()  # drops the ids no longer leased

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
        from runtime.image.archive import read_archive

        with self._guard.pulling():
            imported = [self._import(entry, path) for entry in read_archive(path, self._content)]
        self._collect(wait=False)
        return imported

    def gc(self) -> GcResult:
        """Deletes blobs and snapshots that no image references (waits for running pulls)."""
        return self._collect(wait=True) or GcResult((), ())

    def _pull(self, ref: Reference, auth: Credentials | None, pinned: bool) -> Image:
        what = f'image "{ref.full}"'
        log.info("%s: pulling", what)
        with self._guard.pulling():
            client = RegistryClient(ref, self._hosts, self._transport, auth, self._stall_timeout)
            target, media_type, manifest = fetch_manifests(client, ref, self._content, self._platform)

            def read() -> ImageContent:
                fetch_config(client, manifest.config, self._content, what)
                return read_image(self._content, target, media_type, self._platform, what)

            tag = ref.tagged()
            image = self._install(manifest, read, (tag,) if tag else (), (ref.with_digest(target),), pinned,
                                  layer_fetcher(client, self._content), what)
        log.info("%s: pulled as %s", what, image.id)
        return image

    def _import(self, entry: ArchiveImage, path: str) -> Image:
        what = f'image archive "{path}"'
        # The archive stored everything, the config too: the image is read in full at once.
        content = read_image(self._content, entry.target, entry.media_type, self._platform, what)
        tags = tuple(t for t in (n.tagged() for n in entry.names) if t)
        return self._install(content.manifest, lambda: content, tags, (), False, _already_stored(path), what)

    def _install(self, manifest: Manifest, read: Callable[[], ImageContent], tags: tuple[str, ...],
                 digests: tuple[str, ...], pinned: bool, fetch: Fetch, what: str) -> Image:
        """Records the image of ``manifest`` once its layers are unpacked; ``read()`` gives the rest
        of it (fetching the config if need be), and runs while the layers download."""
        layers = manifest.layers
        progress = PullProgress(what, len(layers), sum(layer.size for layer in layers),
                                self._stall_timeout, self._clock)
        read_once = functools.cache(read)
        chains = ensure_snapshots(layers, lambda: read_once().config.diff_ids, fetch=fetch,
                                  content=self._content, snapshots=self._snapshots, unpack=self._unpack,
                                  progress=progress, workers=self._workers,
                                  poll=min(1.0, self._stall_timeout / 4))
        progress.finish()
        content = read_once()
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
    def fetch(layer: Descriptor, _progress: PullProgress, _pipe: int | None) -> None:
        raise NotFound(f'image archive "{path}": layer {layer.digest} is not in the archive')
    return fetch


def _in_process(fileops: FileOps) -> Unpacker:
    from runtime.image.unpack import InProcessUnpacker

    return InProcessUnpacker(fileops)
