"""An in-memory index of immutable records backed by one checkpoint file per record.

Changes go through `update(id, fn)`: fn maps the old record to a new one, which is persisted before
it replaces the old one in memory, so memory never runs ahead of disk. Writes of one record run one
at a time; the store-wide lock guards only the index, never a write (two fsyncs), so readers and
writers of other records do not wait behind one (with 30 pods starting at once they all did).

`add(..., sync_beside=True)` leaves the fsyncs of a first record to a thread while its object is
set up: the record is there for a restarted agent at once, and `durable(id)` waits for them before
the caller answers (checkpoint.write_then_sync).

A record that cannot be read at load is moved to ``quarantine/<id>.<unix time>.json`` (kept for a
post-mortem, out of the way of every later start) and its id handed to the caller, whose job it is
to reclaim what the object held.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

from runtime.errors import AlreadyExists, NotFound
from runtime.ids import check_id, is_id
from runtime.locks import KeyedLocks
from runtime.store import checkpoint

T = TypeVar("T")
log = logging.getLogger(__name__)


class RecordStore(Generic[T]):
    def __init__(self, directory: Path, kind: str, to_dict: Callable[[T], dict[str, Any]],
                 from_dict: Callable[[dict[str, Any]], T], clock: Callable[[], float] = time.time) -> None:
        self._dir = directory
        self._kind = kind
        self._clock = clock
        self._to_dict = to_dict
        self._from_dict = from_dict
        self._lock = threading.RLock()  # the index only
        self._writing = KeyedLocks()  # one writer per record, for the whole change
        self._records: dict[str, T] = {}
        self._syncing: dict[str, Future[None]] = {}  # first records whose fsyncs run beside their set-up
        self._syncs: ThreadPoolExecutor | None = None  # made at the first such record
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def load_all(self) -> list[str]:
        """Reads every record on disk and returns the ids of those it quarantined: torn, corrupt, of
        another version, not of the record's shape, or naming another id than their file's.

        Temporary files are what a write left when it was interrupted (checkpoint.write_atomic):
        beside its record, an unfinished update of a record that is still whole, so it is dropped;
        alone, the unfinished first write of an object, quarantined like a torn record."""
        quarantined: list[str] = []
        with self._lock:
            for path in sorted(self._dir.iterdir()):
                record_id = _record_id(path.name)
                if record_id is None:
                    continue
                why = self._drop_update(path, record_id) if path.name.endswith(".tmp") else self._load(path, record_id)
                if why:
                    self._quarantine(path, record_id, why)
                    quarantined.append(record_id)
        return quarantined

    def _load(self, path: Path, record_id: str) -> str:
        """Adds the record; what is wrong with it, if anything."""
        try:
            record = self._from_dict(checkpoint.load(path))
        except Exception as e:  # noqa: BLE001 - one bad record must not stop recovery
            return str(e) or type(e).__name__
        named = getattr(record, "id", record_id)  # records of objects carry their id
        if named != record_id:
            return f"it is the record of {named!r}"
        self._records[record_id] = record
        return ""

    def _drop_update(self, tmp: Path, record_id: str) -> str:
        """Removes the temporary file of an interrupted update; one that has no record beside it is
        an interrupted first write, to quarantine."""
        if not (self._dir / f"{record_id}.json").exists():
            return "its first write was interrupted before the rename"
        log.info("%s %s: dropping %s, an update interrupted before the rename", self._kind, record_id, tmp.name)
        tmp.unlink(missing_ok=True)
        return ""

    def _quarantine(self, path: Path, record_id: str, reason: str) -> None:
        """Moves an unreadable record aside (rename: all or nothing); if even that fails, it stays
        and is met again at the next start."""
        target = self._dir / QUARANTINE / f"{record_id}.{int(self._clock())}.json"
        try:
            target.parent.mkdir(mode=0o700, exist_ok=True)
            os.rename(path, target)
            checkpoint.fsync_dir(self._dir)
            checkpoint.fsync_dir(target.parent)
        except OSError as e:
            log.error("%s %s: unreadable record %s (%s) could not be quarantined: %s",
                      self._kind, record_id, path, reason, e)
            return
        log.warning("%s %s: unreadable record quarantined as %s: %s", self._kind, record_id, target, reason)

    def add(self, record_id: str, record: T, sync_beside: bool = False) -> None:
        """``sync_beside``: return once the record is in place, its fsyncs left to a thread;
        `durable(record_id)` waits for them."""
        with self._writing.hold(record_id):
            if self.find(record_id) is not None:
                raise AlreadyExists(f"{self._kind} {record_id!r} already exists")
            if sync_beside:
                sync = checkpoint.save_then_sync(self._path(record_id), self._to_dict(record))
                with self._lock:
                    if self._syncs is None:
                        self._syncs = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix=f"sync-{self._kind}")
                    self._syncing[record_id] = self._syncs.submit(sync)
            else:
                checkpoint.save(self._path(record_id), self._to_dict(record))
            with self._lock:
                self._records[record_id] = record

    def durable(self, record_id: str) -> None:
        """Waits for the fsyncs of a record added with ``sync_beside``; raises what they raised."""
        with self._lock:
            pending = self._syncing.pop(record_id, None)
        if pending is not None:
            pending.result()

    def get(self, record_id: str) -> T:
        with self._lock:
            try:
                return self._records[record_id]
            except KeyError:
                raise NotFound(f"{self._kind} {record_id!r} not found") from None

    def find(self, record_id: str) -> T | None:
        with self._lock:
            return self._records.get(record_id)

    def update(self, record_id: str, change: Callable[[T], T]) -> T:
        with self._writing.hold(record_id):
            new = change(self.get(record_id))
            checkpoint.save(self._path(record_id), self._to_dict(new))
            with self._lock:
                self._records[record_id] = new
            return new

    def delete(self, record_id: str) -> None:
        with self._writing.hold(record_id):
            if self.find(record_id) is not None:
                self._path(record_id).unlink(missing_ok=True)
                with self._lock:
                    del self._records[record_id]
                    self._syncing.pop(record_id, None)  # a failed set-up's: its fsyncs no longer matter

    def all(self) -> list[T]:
        with self._lock:
            return list(self._records.values())

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._records)

    def _path(self, record_id: str) -> Path:
        return self._dir / f"{check_id(record_id, self._kind)}.json"


QUARANTINE = "quarantine"
SYNC_THREADS = 4  # pods set up at once each wait on their own record's fsyncs


def _record_id(name: str) -> str | None:
    """The id a record file (``<id>.json``) or its write's temporary file (``.<id>.json.tmp``)
    belongs to; None for anything else."""
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:-4]
    record_id = name.removesuffix(".json")
    return record_id if name.endswith(".json") and is_id(record_id) else None
