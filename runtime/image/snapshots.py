"""Unpacked layers, one directory per chain ID, usable as overlayfs lowerdirs.

Layout: ``<root>/snapshots/<n>/fs`` is the layer's tree and ``<n>/snapshot.json`` its record.
Short numeric names keep the overlay mount options of deep images under the page-size limit.
A snapshot is built in ``<n>.tmp`` and renamed into place, so a numeric directory is complete.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import NotFound
from runtime.fsusage import tree_usage
from runtime.image.fstree import remove_tree
from runtime.store.checkpoint import fsync_dir, write_json

log = logging.getLogger(__name__)

_RECORD = "snapshot.json"


@dataclass(frozen=True)
class Snapshot:
    chain_id: str
    parent: str | None
    key: str  # the directory name
    path: str  # the lowerdir
    size: int  # bytes on disk
    inodes: int


class SnapshotStore:
    def __init__(self, root: str) -> None:
        self._dir = os.path.join(root, "snapshots")
        os.makedirs(self._dir, mode=0o700, exist_ok=True)
        self._cond = threading.Condition()
        self._building: set[str] = set()
        self._by_chain: dict[str, Snapshot] = {}
        self._next_key = 1
        self._load()

    def get(self, chain_id: str) -> Snapshot | None:
        with self._cond:
            return self._by_chain.get(chain_id)

    def all(self) -> list[Snapshot]:
        with self._cond:
            return list(self._by_chain.values())

    def create(self, chain_id: str, parent: str | None, build: Callable[[str], None]) -> Snapshot:
        """The snapshot of ``chain_id``, built by ``build(fs_dir)`` unless it exists; built once even
        when several pulls need it at the same time. A failed build leaves nothing behind."""
        with self._cond:
            while chain_id in self._building:
                self._cond.wait()
            if (existing := self._by_chain.get(chain_id)) is not None:
                return existing
            self._building.add(chain_id)
            key = str(self._next_key)
            self._next_key += 1
        try:
            snapshot = self._build(chain_id, parent, key, build)
            with self._cond:
                self._by_chain[chain_id] = snapshot
            return snapshot
        finally:
            with self._cond:
                self._building.discard(chain_id)
                self._cond.notify_all()

    def lowerdirs(self, chain_ids: Sequence[str]) -> list[str]:
        """Overlay lowerdirs for a layer stack given bottom first: the top layer comes first."""
        with self._cond:
            missing = [c for c in chain_ids if c not in self._by_chain]
            if missing:
                raise NotFound(f"snapshot {missing[0]}: not unpacked")
            return [self._by_chain[c].path for c in reversed(chain_ids)]

    def remove_unreferenced(self, referenced: Iterable[str]) -> list[str]:
        """Removes every snapshot whose chain ID is not in ``referenced``; returns the removed IDs."""
        keep = set(referenced)
        with self._cond:
            doomed = [s for c, s in self._by_chain.items() if c not in keep and c not in self._building]
            for s in doomed:
                del self._by_chain[s.chain_id]
        for s in doomed:
            # Renamed first so a crash mid-removal leaves a name _load() discards.
            trash = os.path.join(self._dir, f"{s.key}.removing")
            os.rename(os.path.join(self._dir, s.key), trash)
            remove_tree(trash)
        return [s.chain_id for s in doomed]

    def usage(self) -> tuple[int, int]:
        with self._cond:
            return (sum(s.size for s in self._by_chain.values()),
                    sum(s.inodes for s in self._by_chain.values()))

    def _build(self, chain_id: str, parent: str | None, key: str, build: Callable[[str], None]) -> Snapshot:
        tmp = os.path.join(self._dir, f"{key}.tmp")
        final = os.path.join(self._dir, key)
        try:
            os.mkdir(tmp, 0o700)
            os.mkdir(os.path.join(tmp, "fs"), 0o755)
            build(os.path.join(tmp, "fs"))
            usage = tree_usage(os.path.join(tmp, "fs"))
            size, inodes = usage.used_bytes, usage.inodes_used
            write_json(Path(tmp, _RECORD), {"version": 1, "chain_id": chain_id, "parent": parent,
                                                    "size": size, "inodes": inodes})
            os.rename(tmp, final)
            fsync_dir(self._dir)
        except BaseException:
            remove_tree(tmp)
            raise
        return Snapshot(chain_id, parent, key, os.path.join(final, "fs"), size, inodes)

    def _load(self) -> None:
        for name in os.listdir(self._dir):
            path = os.path.join(self._dir, name)
            if not name.isdigit():
                log.info("removing unfinished snapshot directory %s", path)
                remove_tree(path)
                continue
            self._next_key = max(self._next_key, int(name) + 1)
            try:
                with open(os.path.join(path, _RECORD)) as f:
                    rec = json.load(f)
                snapshot = Snapshot(rec["chain_id"], rec["parent"], name, os.path.join(path, "fs"),
                                    rec["size"], rec["inodes"])
            except (OSError, ValueError, KeyError) as e:
                log.warning("removing snapshot %s with an unreadable record: %s", path, e)
                remove_tree(path)
                continue
            self._by_chain[snapshot.chain_id] = snapshot
