"""Fetching an image's documents and blobs from a registry into the content store."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from runtime.errors import InvalidArgument, ResourceExhausted
from runtime.image.content import ContentStore
from runtime.image.digest import verified
from runtime.image.layers import Fetch
from runtime.image.manifest import (
    MAX_DOCUMENT,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_document,
    select_platform,
)
from runtime.image.pipefeed import feed
from runtime.image.progress import PullProgress
from runtime.image.reference import Reference
from runtime.image.registry import RegistryClient


def fetch_manifests(client: RegistryClient, ref: Reference, content: ContentStore,
                    platform: Platform) -> tuple[str, str, Manifest]:
    """Stores what ``ref`` names and, if that was an index, the platform's manifest.

    Returns the digest and media type of what ``ref`` named (the repo digest's target) and the
    image manifest: its config and layers can then be fetched side by side.
    """
    what = f'image "{ref.full}"'
    top = client.manifest(ref.object)
    content.write(top.digest, len(top.body), [top.body])
    doc = parse_document(top.media_type, top.body, what)
    if isinstance(doc, Index):
        chosen = select_platform(doc, platform, what)
        fetched = client.manifest(chosen.digest)
        if len(fetched.body) != chosen.size:
            raise InvalidArgument(f"{what}: manifest {chosen.digest} is {len(fetched.body)} bytes, "
                                  f"the index says {chosen.size}")
        content.write(fetched.digest, len(fetched.body), [fetched.body])
        doc = parse_document(chosen.media_type, fetched.body, what)
        if isinstance(doc, Index):
            raise InvalidArgument(f"{what}: index entry {chosen.digest} is an index, not a manifest")
    return top.digest, top.media_type, doc


def fetch_config(client: RegistryClient, config: Descriptor, content: ContentStore, what: str) -> None:
    """Stores the image config unless the store has it."""
    if config.size > MAX_DOCUMENT:
        raise ResourceExhausted(f"{what}: config {config.digest} is {config.size} bytes, "
                                f"more than the {MAX_DOCUMENT} allowed")
    if not content.has(config.digest):
        with contextlib.closing(client.blob(config)) as chunks:
            content.write(config.digest, config.size, chunks)


def layer_fetcher(client: RegistryClient, content: ContentStore) -> Fetch:
    def fetch(layer: Descriptor, progress: PullProgress, pipe: int | None) -> None:
        with contextlib.closing(client.blob(layer)) as chunks:
            if pipe is None:
                content.write(layer.digest, layer.size, _counted(chunks, progress))
            else:
                feed(verified(_counted(chunks, progress), layer.digest, layer.size,
                              f"content blob {layer.digest}"), pipe, progress.stop_if_cancelled)
    return fetch


def _counted(chunks: Iterator[bytes], progress: PullProgress) -> Iterator[bytes]:
    for chunk in chunks:
        progress.downloaded(len(chunk))
        yield chunk
