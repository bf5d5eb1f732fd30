from __future__ import annotations

import json
import logging
import os
import stat
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest

from runtime.errors import AlreadyExists, Internal, InvalidArgument, NotFound
from runtime.ids import new_id, resolve
from runtime.store import checkpoint
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore


@dataclass(frozen=True)
class Thing:
    name: str
    state: str = "created"


def store(path: Path) -> RecordStore[Thing]:
    return RecordStore(path, "thing", asdict, lambda d: Thing(**d))


def test_records_survive_a_reload(tmp_path: Path) -> None:
    s = store(tmp_path)
    a, b = new_id(), new_id()
    s.add(a, Thing("a"))
    s.add(b, Thing("b"))
    s.update(a, lambda t: replace(t, state="running"))
    s.delete(b)
    again = store(tmp_path)
    assert again.load_all() == []
    assert again.ids() == [a] and again.get(a) == Thing("a", "running")
    on_disk = json.loads((tmp_path / f"{a}.json").read_text())
    assert on_disk == {"version": 1, "name": "a", "state": "running"}


def test_add_twice_and_missing_ids(tmp_path: Path) -> None:
    s = store(tmp_path)
    a = new_id()
    s.add(a, Thing("a"))
    with pytest.raises(AlreadyExists):
        s.add(a, Thing("again"))
    with pytest.raises(NotFound, match="thing"):
        s.get(new_id())
    s.delete(new_id())  # unknown: nothing to do


def test_hostile_ids_never_become_paths(tmp_path: Path) -> None:
    s = store(tmp_path / "records")
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    with pytest.raises(InvalidArgument):
        s.add("../victim", Thing("x"))
    s.delete("../victim")
    assert victim.exists()


def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = store(tmp_path)
    a = new_id()
    s.add(a, Thing("a"))

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(Internal, match="No space left"):
        s.update(a, lambda t: replace(t, state="running"))
    monkeypatch.undo()
    assert s.get(a).state == "created"
    assert store(tmp_path).load_all() == [] and [p.name for p in tmp_path.iterdir()] == [f"{a}.json"]


@dataclass(frozen=True)
class Named:
    id: str
    size: int


NOW = 1_700_000_000


def named_store(path: Path) -> RecordStore[Named]:
    return RecordStore(path, "named", encode, lambda d: decode(Named, d), clock=lambda: NOW + 0.7)


def bad_records(directory: Path) -> dict[str, bytes]:
    """One unreadable record of each kind, by id: what it holds on disk."""
    whole = json.dumps({"version": 1, "id": "x" * 64, "size": 12345678}).encode()
    ids = [new_id() for _ in range(8)]
    contents = {
        ids[0]: b"\x00\x00\x00\x00 not json",  # garbage
        ids[1]: whole[: len(whole) // 2],  # torn: half of a record
        ids[2]: b"",  # a crash before the data reached the disk
        ids[3]: json.dumps({"version": 2, "id": ids[3], "size": 1}).encode(),  # another version
        ids[4]: json.dumps({"version": 1, "id": ids[4], "size": "big"}).encode(),  # wrong field type
        ids[5]: json.dumps({"version": 1, "id": ids[5]}).encode(),  # a field missing
        ids[6]: json.dumps([1, {"version": 1}]).encode(),  # not an object
        ids[7]: json.dumps({"version": 1, "id": ids[0], "size": 1}).encode(),  # another object's record
    }
    for record_id, data in contents.items():
        (directory / f"{record_id}.json").write_bytes(data)
    return contents


def test_unreadable_records_are_quarantined_and_the_good_ones_load(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    good = [new_id(), new_id()]
    for record_id in good:
        checkpoint.save(tmp_path / f"{record_id}.json", {"id": record_id, "size": 1})
    bad = bad_records(tmp_path)
    s = named_store(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert sorted(s.load_all()) == sorted(bad)
    assert sorted(s.ids()) == sorted(good)
    quarantine = tmp_path / "quarantine"
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700
    assert {p.name: p.read_bytes() for p in quarantine.iterdir()} == \
        {f"{record_id}.{NOW}.json": data for record_id, data in bad.items()}
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{g}.json" for g in good)
    # Logged once each, with what was wrong.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad) and all("quarantined" in w for w in warnings)
    ids = list(bad)
    reasons = {i: next(w for w in warnings if i in w.split(":")[0]) for i in ids}
    assert "unsupported record version 2" in reasons[ids[3]]
    assert "expected int, got str" in reasons[ids[4]]
    assert "size" in reasons[ids[5]]
    assert "not a JSON object" in reasons[ids[6]]
    assert f"record of {ids[0]!r}" in reasons[ids[7]]
    # The next start meets only the good ones.
    again = named_store(tmp_path)
    assert again.load_all() == [] and sorted(again.ids()) == sorted(good)


def test_interrupted_writes(tmp_path: Path) -> None:
    updated, first = new_id(), new_id()
    checkpoint.save(tmp_path / f"{updated}.json", {"id": updated, "size": 1})
    (tmp_path / f".{updated}.json.tmp").write_text('{"version": 1, "id": "')  # an update cut short
    (tmp_path / f".{first}.json.tmp").write_text('{"version": 1, "id": "')  # a first write cut short
    (tmp_path / ".notes.tmp").write_text("not ours")
    s = named_store(tmp_path)
    assert s.load_all() == [first]
    assert s.get(updated) == Named(updated, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".notes.tmp", f"{updated}.json", "quarantine"])
    assert [p.name for p in (tmp_path / "quarantine").iterdir()] == [f"{first}.{NOW}.json"]


def test_a_record_that_cannot_be_moved_aside_is_still_reported(tmp_path: Path) -> None:
    bad = new_id()
    (tmp_path / f"{bad}.json").write_text("{")
    (tmp_path / "quarantine").write_text("a file where the directory should be")
    s = named_store(tmp_path)
    assert s.load_all() == [bad]
    assert s.ids() == [] and (tmp_path / f"{bad}.json").read_text() == "{"


def test_prefix_resolution() -> None:
    ids = ["ab" + "0" * 62, "ac" + "0" * 62]
    assert resolve("ab", ids, "container") == ids[0]
    with pytest.raises(InvalidArgument, match="ambiguous"):
        resolve("a", ids, "container")
    with pytest.raises(NotFound):
        resolve("ff", ids, "container")


def test_a_slow_write_holds_up_only_its_own_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write (two fsyncs) blocks neither reads nor the writes of other records; writes of one
    record still run one at a time, each on what the one before it left."""
    s = store(tmp_path)
    slow, other = new_id(), new_id()
    s.add(slow, Thing("slow"))
    s.add(other, Thing("other"))
    entered, release = threading.Event(), threading.Event()
    save = checkpoint.save

    def held_save(path: Path, record: dict) -> None:
        if path.name.startswith(slow) and record["state"] == "first":
            entered.set()
            assert release.wait(10)
        save(path, record)

    monkeypatch.setattr(checkpoint, "save", held_save)
    first = threading.Thread(target=s.update, args=(slow, lambda t: replace(t, state="first")))
    first.start()
    assert entered.wait(10)
    second_saw: list[str] = []

    def second_change(t: Thing) -> Thing:
        second_saw.append(t.state)
        return replace(t, state=t.state + "+second")

    second = threading.Thread(target=s.update, args=(slow, second_change))
    second.start()
    # While the first write of `slow` is held: the other record is read, written, added, listed.
    done = threading.Event()

    def others() -> None:
        s.update(other, lambda t: replace(t, state="running"))
        s.add(new_id(), Thing("new"))
        assert s.get(slow) == Thing("slow") and len(s.all()) == 3
        done.set()

    threading.Thread(target=others).start()
    try:
        assert done.wait(5), "a write of another record waited for the slow one"
        assert second_saw == []  # the second write of `slow` waits for the first
    finally:
        release.set()
        first.join(10)
        second.join(10)
    assert second_saw == ["first"] and s.get(slow) == Thing("slow", "first+second")
    assert store(tmp_path).load_all() == [] and json.loads((tmp_path / f"{slow}.json").read_text())["state"] == \
        "first+second"


def test_a_record_synced_beside_is_in_place_at_once_and_durable_when_its_fsyncs_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """add(sync_beside=True) returns before the record's fsyncs; durable() waits for them."""
    s = store(tmp_path)
    a = new_id()
    entered, release = threading.Event(), threading.Event()
    fsync = os.fsync

    def held_fsync(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)
    s.add(a, Thing("a"), sync_beside=True)
    assert entered.wait(10)  # the fsync runs in its thread while add has returned
    assert s.get(a) == Thing("a")
    assert json.loads((tmp_path / f"{a}.json").read_text()) == {"version": 1, "name": "a", "state": "created"}
    assert not list(tmp_path.glob(".*.tmp"))
    waiter = threading.Thread(target=s.durable, args=(a,))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # still in the fsync
    release.set()
    waiter.join(10)
    assert not waiter.is_alive()
    s.durable(a)  # waited once: nothing more to wait for


def test_a_failed_fsync_beside_is_raised_by_durable_and_a_delete_forgets_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = store(tmp_path)
    a, b = new_id(), new_id()

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    s.add(a, Thing("a"), sync_beside=True)
    with pytest.raises(Internal, match=f"syncing .*{a}.json: .*Input/output error"):
        s.durable(a)
    s.add(b, Thing("b"), sync_beside=True)
    s.delete(b)  # a failed set-up's record: its fsyncs no longer matter
    s.durable(b)
    assert s.ids() == [a]


def test_write_then_sync_keeps_no_file_open_and_syncs_what_is_at_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"

    def open_on_it() -> list[str]:  # this process's descriptors of the record (other threads' come and go)
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                    found.append(fd)
            except OSError:
                continue
        return found

    sync = checkpoint.write_then_sync(path, b"{}")
    assert path.read_bytes() == b"{}" and open_on_it() == []
    checkpoint.write_atomic(path, b"[]", durable=False)  # a later write replaced it before the sync ran
    synced: list[int] = []
    fsync = os.fsync

    def seen_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", seen_fsync)
    sync()
    assert synced[0] == path.stat().st_ino and open_on_it() == []
