"""The ready pods with their running containers, read now: what a scrape exports
(metrics/collector.py) and what ListPodSandboxMetrics reports (cri/stats.py). Apart from the
collector, so the CRI side does not bring prometheus_client into an agent that exports nothing."""
from __future__ import annotations

import logging

from runtime.container.record import Container, State
from runtime.sandbox.record import Sandbox
from runtime.stats.reader import StatsReader
from runtime.stats.sample import PodSample

log = logging.getLogger("metrics.collector")


def read_pods(sandboxes: list[Sandbox], containers: list[Container],
              reader: StatsReader) -> tuple[list[tuple[Sandbox, PodSample]], bool]:
    """Samples of the ready pods with their running containers, and whether any reading failed:
    what a scrape exports and what ListPodSandboxMetrics reports."""
    by_pod: dict[str, list[Container]] = {}
    for c in containers:
        if c.state == State.RUNNING:
            by_pod.setdefault(c.sandbox_id, []).append(c)
    pods: list[tuple[Sandbox, PodSample]] = []
    failed = False
    for sandbox in sorted(sandboxes, key=lambda s: s.created_at):
        if not sandbox.ready:
            continue
        try:
            pods.append((sandbox, reader.pod(sandbox, sorted(by_pod.get(sandbox.id, []),
                                                                key=lambda c: c.created_at))))
        except Exception:  # noqa: BLE001 - one unreadable pod must not empty the whole scrape
            if not failed:
                log.exception("metrics: reading pod %s failed; left out", sandbox.id[:12])
            failed = True
    return pods, failed
