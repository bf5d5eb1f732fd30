"""A scrape never blocks RPCs: while one hangs in a cgroup read, the record stores every RPC goes
through still answer and change, and a second scrape is served."""
from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from metrics.collector import ContainerCollector
from metrics.server import MetricsServer
from runtime.cgroups.stats import CgroupStats
from runtime.cgroups.v2 import V2Manager
from runtime.container.record import Container
from runtime.sandbox.record import Sandbox
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore
from tests.unit.stats.builders import APP, BATCH, WORKER, reader, scene, tree

WAIT_S = 5.0


class HangingCgroups(V2Manager):
    """The fake v2 tree, except that the first stats() read hangs until released."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.entered, self.release = threading.Event(), threading.Event()
        self._first = threading.Lock()

    def stats(self, path: str) -> CgroupStats:
        if self._first.acquire(blocking=False):
            self.entered.set()
            assert self.release.wait(WAIT_S * 2), "never released"
        return super().stats(path)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[RecordStore, RecordStore, HangingCgroups, str]]:
    sandboxes: RecordStore[Sandbox] = RecordStore(tmp_path / "sandboxes", "sandbox", encode,
                                                  lambda d: decode(Sandbox, d))
    containers: RecordStore[Container] = RecordStore(tmp_path / "containers", "container", encode,
                                                     lambda d: decode(Container, d))
    pods, ctrs = scene("v2")
    for s in pods:
        sandboxes.add(s.id, s)
    for c in ctrs:
        containers.add(c.id, c)
    cgroups = HangingCgroups(str(tree("v2") / "cgroup"))
    collector = ContainerCollector(sandboxes, containers, reader("v2", cgroups=cgroups))
    server = MetricsServer("127.0.0.1:0", collector, process=False)
    host, port = server.start()
    try:
        yield sandboxes, containers, cgroups, f"http://{host}:{port}/metrics"
    finally:
        cgroups.release.set()
        server.stop()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=WAIT_S * 3) as response:
        return response.read().decode()


def test_records_change_and_scrapes_are_served_while_a_scrape_hangs(node) -> None:  # noqa: ANN001
    sandboxes, containers, cgroups, url = node
    with ThreadPoolExecutor(2) as pool:
        stuck = pool.submit(scrape, url)
        assert cgroups.entered.wait(WAIT_S), "the scrape never read a cgroup"

        # What RPCs do to the records, each finishing while the scrape is still inside its read.
        containers.update(APP, lambda c: replace(c, exit_code=3))
        containers.delete(WORKER)
        assert len(containers.all()) == 3 and containers.get(APP).exit_code == 3
        sandboxes.update(BATCH, lambda s: replace(s, stopped_at=1))
        assert sandboxes.get(BATCH).stopped_at == 1

        second = scrape(url)  # the hanging read was the first one only
        assert 'container="app"' in second and 'container="worker"' not in second
        assert not stuck.done()

        cgroups.release.set()
        assert 'container="app"' in stuck.result(timeout=WAIT_S)
