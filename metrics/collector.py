"""The Prometheus collector: reads every ready pod and its running containers at scrape time.

prometheus_client calls ``collect`` on the scraping HTTP thread; nothing is read in between, so no
value is older than the scrape. It takes copies of the record lists (a store's lock is held only
for the copy), never calls into the managers (whose reads may write records) and never changes a
file, so a scrape cannot block or alter what an RPC does. Its cost is a fixed handful of file
reads per container and one per pod for the network (runtime/stats/netdev.py).

A pod or container whose reading fails is left out of that scrape and container_scrape_error is 1;
the error is logged once per scrape.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from metrics.exposition import ContainerPrinter
from metrics.families import FAMILIES, Family, base_values
from metrics.own import OwnMetrics
from metrics.pods import read_pods
from runtime.container.record import Container
from runtime.sandbox.record import Sandbox
from runtime.stats.reader import StatsReader
from runtime.stats.sample import Sample

log = logging.getLogger(__name__)
T = TypeVar("T")


class Records(Protocol[T]):
    def all(self) -> list[T]: ...




def family_metric(family: Family, samples: list[Sample]) -> Metric:
    # prometheus_client adds "_total" to a counter's name when it prints the family.
    name = family.name.removesuffix("_total") if family.type == "counter" else family.name
    metric = Metric(name, family.help, family.type)
    names = family.label_names
    for s in samples:
        base = base_values(s)
        for extra, value in family.values(s):
            metric.add_sample(family.name, dict(zip(names, base + extra)), value)
    return metric


@dataclass(frozen=True)
class Scrape:
    sandboxes: list[Sandbox]
    containers: list[Container]
    samples: list[Sample]
    failed: bool


class _Own(Collector):
    def __init__(self, own: OwnMetrics, scrape: Scrape) -> None:
        self._own, self._scrape = own, scrape

    def collect(self) -> Iterator[Metric]:
        s = self._scrape
        return self._own.collect(s.containers, s.sandboxes, s.failed)


class ContainerCollector(Collector):
    def __init__(self, sandboxes: Records[Sandbox], containers: Records[Container], reader: StatsReader,
                 own: OwnMetrics | None = None) -> None:
        self._sandboxes = sandboxes
        self._containers = containers
        self._reader = reader
        self._own = own
        self._printer = ContainerPrinter()

    def scrape(self) -> Scrape:
        sandboxes, containers = self._sandboxes.all(), self._containers.all()
        pods, failed = read_pods(sandboxes, containers, self._reader)
        samples = [s for _, pod in pods for s in (pod.pod, *pod.containers)]
        return Scrape(sandboxes, containers, samples, failed)

    def describe(self) -> Iterator[Metric]:
        """The family names without reading anything (prometheus_client's ?name[]= filters)."""
        for family in FAMILIES:
            yield family_metric(family, [])
        if self._own is not None:
            yield from self._own.describe()

    def collect(self) -> Iterator[Metric]:
        scrape = self.scrape()
        for family in FAMILIES:
            metric = family_metric(family, scrape.samples)
            if metric.samples:  # like the Go client, a family without series is not printed
                yield metric
        if self._own is not None:
            yield from _Own(self._own, scrape).collect()

    def text(self) -> str:
        """What generate_latest prints for this collector, written by the fast printer."""
        scrape = self.scrape()
        text = self._printer.text(scrape.samples)
        if self._own is not None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Own(self._own, scrape))
            text += generate_latest(registry).decode()
        return text
