"""Getting every layer of an image into a snapshot: fetch when missing, unpack, a few at a time.

Each layer is its own overlay lowerdir, so layers unpack independently and in parallel; the chain
ID names the snapshot so an image sharing a lower stack with another reuses its snapshots.
Downloads (waiting on the network) and unpacks (busy on a CPU) run in pools of their own, so no
download waits behind an unpack and there are never more unpacks than CPUs. The layers' downloads
start with the image config's: the diff IDs it holds are needed only to name and check snapshots.
A layer the unpacker can follow (a large one, unpacked in a child process) is unpacked while it
downloads: the child reads the blob's ingest file as the download thread writes it (see
Unpacker.follow), so decompressing and writing files overlap the download instead of following it.
That download waits for the config first, to name the layer's snapshot.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from runtime.image.content import ContentStore
from runtime.image.digest import chain_ids
from runtime.image.manifest import Descriptor
from runtime.image.progress import PullProgress
from runtime.image.snapshots import SnapshotStore

if TYPE_CHECKING:  # the agent loads the unpacking code (tarfile, decompressors) only when it unpacks
    from runtime.image.unpack import FollowedLayer, Unpacker

OnIngest = Callable[[str], None]  # told the path of a blob's ingest file, before it grows
# Puts one blob into the content store (ContentStore.write's on_ingest is the third argument).
Fetch = Callable[[Descriptor, PullProgress, OnIngest | None], None]


def ensure_snapshots(layers: Sequence[Descriptor], diff_ids: Callable[[], Sequence[str]], *,
                     fetch: Fetch, content: ContentStore, snapshots: SnapshotStore, unpack: Unpacker,
                     progress: PullProgress, workers: int, poll: float) -> tuple[str, ...]:
    """The chain IDs of the image's snapshots (bottom first), all present on return.

    ``diff_ids()`` gives the layers' uncompressed digests, one per layer (from the image config,
    which it may fetch); it runs beside the downloads. The first failure, or the watchdog in ``progress``,
    cancels the other layers; the pools are drained before raising so no worker is left writing.
    """

    def identities() -> tuple[Sequence[str], tuple[str, ...]]:
        ids = diff_ids()  # as many as there are layers (read_image checks)
        return ids, chain_ids(ids)

    def download(i: int) -> None:
        # An already unpacked layer is known only once its chain ID is: fetching it meanwhile
        # would be wasted, but so would the wait; a layer whose blob is here needs neither.
        layer = layers[i]
        if content.has(layer.digest):
            return
        if unpack.follows(layer.size):
            ids, chains = named.result()
            if snapshots.get(chains[i]) is None:
                snapshots.create(chains[i], chains[i - 1] if i else None,
                                 lambda fs: fetch_following(layer, fs, ids[i]))
        # Built meanwhile by another pull, from its own download: the blob is still to store.
        if not content.has(layer.digest):
            fetch(layer, progress, None)

    def fetch_following(layer: Descriptor, fs: str, diff_id: str) -> None:
        unpacking: list[FollowedLayer] = []

        def follow(ingest: str) -> None:
            unpacking.append(unpack.follow(ingest, layer.media_type, fs, layer=layer.digest, diff_id=diff_id))

        try:
            fetch(layer, progress, follow)
        except BaseException:
            if unpacking:
                unpacking[0].abort()  # before the snapshot's directory goes: it may still write
            raise
        unpacking[0].finish()  # the blob is verified: the snapshot stands only if the unpack is too

    def unpack_one(i: int, downloaded: Future[None]) -> None:
        ids, chains = named.result()
        downloaded.result()
        if snapshots.get(chains[i]) is None:
            layer = layers[i]

            def build(fs: str) -> None:
                unpack(content.path(layer.digest), layer.media_type, fs, layer=layer.digest,
                       diff_id=ids[i], progress=progress.unpacked)

            snapshots.create(chains[i], chains[i - 1] if i else None, build)
        progress.layer_done()

    # One more fetch worker than downloads, for the config: no layer waits behind it.
    with ThreadPoolExecutor(max_workers=workers + 1, thread_name_prefix="image-fetch") as fetches, \
            ThreadPoolExecutor(max_workers=unpackers(), thread_name_prefix="image-unpack") as pool:
        named = fetches.submit(identities)
        downloads = [fetches.submit(download, i) for i in range(len(layers))]
        futures: list[Future[Any]] = [named, *downloads,
                                      *(pool.submit(unpack_one, i, d) for i, d in enumerate(downloads))]
        try:
            while True:
                done, pending = wait(futures, timeout=poll, return_when=FIRST_EXCEPTION)
                for f in done:
                    if (error := f.exception()) is not None:
                        raise error
                if not pending:
                    return named.result()[1]
                progress.check()
        except BaseException:
            progress.cancel()
            for f in futures:
                f.cancel()
            raise


def unpackers() -> int:
    """Unpacking is CPU-bound (decompress, hash, write): one at a time per CPU we may use."""
    return max(1, len(os.sched_getaffinity(0)))
