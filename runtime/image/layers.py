"""Getting every layer of an image into a snapshot: fetch when missing, unpack, a few at a time.

Each layer is its own overlay lowerdir, so layers unpack independently and in parallel; the chain
ID names the snapshot so an image sharing a lower stack with another reuses its snapshots.
Downloads (waiting on the network) and unpacks (busy on a CPU) run in pools of their own, so no
download waits behind an unpack and there are never more unpacks than CPUs. The layers' downloads
start with the image config's: the diff IDs it holds are needed only to name and check snapshots.
A layer the unpacker can follow (one unpacked in a child process) is streamed: its download goes
through a pipe into the unpacker (Unpacker.follow) and is not stored, as CRI-O stores none, so each
of its bytes is written to disk once (as a file of the snapshot) and decompressing and writing
files overlap the download. The snapshot stands only once the download was verified (size and
digest) and the unpack is whole. Such a download waits for the config first, to name the snapshot.
A layer whose blob the content store has (an imported archive's) is unpacked from it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from runtime.image.content import ContentStore
from runtime.image.digest import chain_ids
from runtime.image.manifest import Descriptor
from runtime.image.pipefeed import ReaderGone, layer_pipe
from runtime.image.progress import PullProgress
from runtime.image.snapshots import SnapshotStore

if TYPE_CHECKING:  # the agent loads the unpacking code (tarfile, decompressors) only when it unpacks
    from runtime.image.unpack import Unpacker

# Downloads one layer blob: into the content store when the third argument is None, else into
# that pipe (its write end, which the caller closes), verified at its end (pull.layer_fetcher).
Fetch = Callable[[Descriptor, PullProgress, int | None], None]


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
            snapshots.create(chains[i], chains[i - 1] if i else None,
                             lambda fs: stream(layer, fs, ids[i]))
        else:
            fetch(layer, progress, None)

    def stream(layer: Descriptor, fs: str, diff_id: str) -> None:
        read_end, write_end = layer_pipe()
        try:
            unpacking = unpack.follow(read_end, layer.media_type, fs, layer=layer.digest, diff_id=diff_id)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)  # the unpacker has its own
        try:
            try:
                fetch(layer, progress, write_end)
            finally:
                os.close(write_end)  # the unpacker's end of the stream
        except ReaderGone:
            unpacking.stopped()  # it failed, and raises what its report says
        except BaseException:
            unpacking.abort()  # before the snapshot's directory goes: it may still write
            raise
        unpacking.finish()  # the blob is verified: the snapshot stands only if the unpack is too

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
