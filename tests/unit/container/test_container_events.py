"""The container manager publishes each change of a container's state once its record shows it:
an exit once however many callers see it, the exits that recovery finds, the exit of an init the
agent's watch saw die (once the monitor has written it), and the removal."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.testing import FakeCgroupManager
from runtime.container.exits import ExitCollector, exit_key, watched_container
from runtime.container.manager import ContainerManager
from runtime.container.model import ContainerConfig
from runtime.container.record import Container, State
from runtime.events.model import EventKind
from runtime.events.testing import RecordedEvents
from runtime.linux.proc import start_time
from runtime.locks import KeyedLocks
from runtime.process.initspec import InitSpec
from runtime.process.testing import FakeWatches
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore

POD = "p" * 64
STOPPED, DELETED = EventKind.STOPPED, EventKind.DELETED


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.store: RecordStore[Container] = RecordStore(tmp_path / "records", "container", encode,
                                                         lambda d: decode(Container, d))
        self.sandboxes: RecordStore[Sandbox] = RecordStore(tmp_path / "sandboxes", "sandbox", encode,
                                                           lambda d: decode(Sandbox, d))
        self.events, self.watches, self.cgroups = RecordedEvents(), FakeWatches(), FakeCgroupManager()

    def manager(self) -> ContainerManager:
        return ContainerManager(self.store, self.sandboxes, None, lambda s: None,  # type: ignore[arg-type]
                                self.cgroups, CgroupDriver.CGROUPFS, KeyedLocks(), str(self.tmp / "root"),
                                str(self.tmp / "run"), lambda: 99, lambda *_: None, self.events, self.watches,
                                recursive_readonly_supported=True)

    def running(self, n: int, pid: int, pid_start: int) -> Container:
        cid = f"{n:064x}"
        exit_file = self.tmp / f"exit-{n}.json"
        spec = InitSpec(id=cid, args=("sleep",), env=(), cwd="/", lowerdirs=(), upperdir="", workdir="",
                        rootfs="", exit_file=str(exit_file))
        c = Container(cid, POD, ContainerConfig(name=f"c{n}", attempt=0, image="busybox"), image_id="sha256:1",
                      image_ref="busybox", spec=spec, cgroup=f"/pycrid/{cid}", created_at=1, started_at=2,
                      pid=pid, pid_start=pid_start, stop_signal="SIGTERM")
        self.store.add(cid, c)
        return c


class StaleReads:
    """The store, but get() answers the record as it was."""

    def __init__(self, store: RecordStore[Container], record: Container) -> None:
        self._store, self._record = store, record

    def get(self, container_id: str) -> Container:
        return self._record

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def exit_with(c: Container, code: int) -> None:
    Path(c.spec.exit_file).write_text(json.dumps({"exit_code": code, "signal": 0, "finished_at": 50}))


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    return Parts(tmp_path)


@pytest.fixture
def dead() -> tuple[int, int]:
    """The pid and start time of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    started = start_time(process.pid) or 1
    process.wait()
    return process.pid, started


@pytest.fixture
def alive():
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid, start_time(process.pid) or 0
    process.kill()
    process.wait()


def test_an_exit_seen_by_many_callers_is_published_once(parts: Parts, dead) -> None:
    manager = parts.manager()
    c = parts.running(1, *dead)
    exit_with(c, 3)
    # Every caller read the record while it still said running, as racing status calls can.
    manager._store = StaleReads(parts.store, parts.store.get(c.id))  # type: ignore[assignment]
    threads = [threading.Thread(target=manager.refresh, args=(c.id,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parts.events.published == [(STOPPED, c.id, POD)]
    assert (parts.store.find(c.id).state, parts.store.find(c.id).exit_code) == (State.EXITED, 3)


def test_recovery_publishes_the_exits_of_the_downtime_and_watches_the_rest(parts: Parts, dead, alive) -> None:
    quit_ = parts.running(1, *dead)
    exit_with(quit_, 7)
    runs = parts.running(2, *alive)
    parts.manager().recover()
    assert parts.events.published == [(STOPPED, quit_.id, POD)]
    assert parts.watches.watched == {exit_key(runs.id): alive}


def test_an_init_seen_dying_is_published_once_its_exit_is_written(parts: Parts, dead) -> None:
    manager = parts.manager()
    c = parts.running(1, *dead)
    manager.exited(c.id)  # the watch fired; the monitor has not written the exit file yet
    time.sleep(0.2)
    assert parts.events.published == []
    exit_with(c, 0)
    deadline = time.monotonic() + 5
    while not parts.events.published and time.monotonic() < deadline:
        time.sleep(0.01)
    assert parts.events.published == [(STOPPED, c.id, POD)]
    assert parts.store.get(c.id).reason == "Completed"


def test_a_start_watches_the_init_and_a_dead_one_is_collected_at_once(parts: Parts, dead) -> None:
    manager = parts.manager()
    c = parts.running(1, *dead)
    exit_with(c, 1)
    parts.watches.watch = lambda key, pid, started: False  # type: ignore[method-assign] # gone already
    manager._watch_exit(c)
    deadline = time.monotonic() + 5
    while not parts.events.published and time.monotonic() < deadline:
        time.sleep(0.01)
    assert parts.events.published == [(STOPPED, c.id, POD)]


def test_removal_is_published_after_the_stop_and_ends_the_watch(parts: Parts, dead) -> None:
    manager = parts.manager()
    c = parts.running(1, *dead)
    exit_with(c, 0)
    parts.watches.watched[exit_key(c.id)] = dead
    manager.remove(c.id)
    assert parts.events.published == [(STOPPED, c.id, POD), (DELETED, c.id, POD)]
    assert parts.watches.watched == {}
    assert parts.store.find(c.id) is None


def test_a_failed_pod_records_a_lost_exit_once(parts: Parts, dead) -> None:
    manager = parts.manager()
    c = parts.running(1, *dead)
    parts.store.update(c.id, lambda r: replace(r, spec=replace(r.spec, exit_file=str(parts.tmp / "never.json"))))
    manager.fail_in_pod(POD, "its monitor process died")
    manager.refresh(c.id)
    assert parts.events.published == [(STOPPED, c.id, POD)]
    assert parts.store.get(c.id).exit_code == 255


def test_watch_keys_name_containers_apart_from_helpers() -> None:
    assert watched_container(exit_key("abc")) == "abc"
    assert watched_container("monitor:abc") == watched_container("pause:abc") == ""


def test_the_collector_keeps_at_each_container_until_it_settles() -> None:
    tries: dict[str, int] = {"a": 0, "b": 0, "bad": 0}
    done = threading.Event()

    def settle(container_id: str) -> bool:
        tries[container_id] += 1
        if container_id == "bad":
            raise OSError("record store gone")
        finished = container_id == "a" or tries["b"] >= 3
        if tries["b"] >= 3:
            done.set()
        return finished

    collector = ExitCollector(settle, poll=0.001)
    for cid in ("a", "b", "bad"):
        collector.collect(cid)
    assert done.wait(5)
    time.sleep(0.05)
    assert tries["a"] == 1 and tries["b"] == 3 and tries["bad"] == 1  # each settled (or given up) once
    collector.collect("a")  # a new mark starts a new round
    deadline = time.monotonic() + 5
    while tries["a"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tries["a"] == 2
