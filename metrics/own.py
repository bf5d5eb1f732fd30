"""pycrid's own metrics: RPCs, image pulls, container exits, recovery, build info.

Events (an RPC served, a pull finished) are counted when they happen, by the observers that
cri/instrument.py and the wrappers in observe.py call; everything else is read from the stores at
scrape time. All of it is exposed by the one collector (collector.py): no global registry, no
``_created`` series.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from runtime.container.record import Container, State
from runtime.process.monitor import DROPPED_FILE, read_dropped
from runtime.process.supervisor import HELPER_KINDS, HelperState
from runtime.sandbox.record import Sandbox
from runtime.spans import Span
from runtime.version import VERSION

if TYPE_CHECKING:
    from prometheus_client.core import Metric

# Seconds: RPCs range from a status read (sub-ms) to a pull or a stop with a grace period.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PULL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RECORD_KINDS = ("container", "sandbox")


class Histogram:
    """Bucket counts and a sum per label set; thread-safe, no clock."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        with self._lock:
            counts, total = self._series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))] += 1
            total[0] += value

    def snapshot(self) -> list[tuple[tuple[str, ...], list[int], float]]:
        with self._lock:
            series = [(labels, list(counts), total[0]) for labels, (counts, total) in sorted(self._series.items())]
        return series

    def metric(self, name: str, documentation: str, label_names: tuple[str, ...]) -> Metric:
        m = _metric(name, documentation, "histogram")
        series = self.snapshot()
        if not label_names and not series:
            series = [((), [0] * (len(self.buckets) + 1), 0.0)]  # an unlabelled histogram exists from the start
        for labels, counts, total in series:
            base = dict(zip(label_names, labels))
            cumulative = 0
            for bound, count in zip((*self.buckets, float("inf")), counts):
                cumulative += count
                m.add_sample(f"{name}_bucket", {**base, "le": _le(bound)}, cumulative)
            m.add_sample(f"{name}_count", base, cumulative)
            m.add_sample(f"{name}_sum", base, total)
        return m


def _metric(name: str, documentation: str, kind: str) -> Metric:
    # Imported at the first scrape: every agent counts its RPCs here, but one that exports no
    # metrics never needs prometheus_client (~3 MiB of its memory).
    from prometheus_client.core import Metric
    return Metric(name, documentation, kind)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Counters:
    """Monotonic counts per label set; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...] = (), value: float = 1) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + value

    def metric(self, name: str, documentation: str, label_names: tuple[str, ...] = ()) -> Metric:
        m = _metric(name.removesuffix("_total"), documentation, "counter")
        with self._lock:
            items = sorted(self._values.items())
        if not label_names and not items:
            items = [((), 0)]  # an unlabelled counter exists from the start
        for labels, value in items:
            m.add_sample(name, dict(zip(label_names, labels)), value)
        return m


class StopRequests:
    """Which containers and pods pycrid was asked to stop or remove: their exits were expected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._containers: set[str] = set()
        self._pods: set[str] = set()

    def container(self, container_id: str) -> None:
        with self._lock:
            self._containers.add(container_id)

    def pod(self, sandbox_id: str) -> None:
        with self._lock:
            self._pods.add(sandbox_id)

    def removed(self, container_id: str = "", sandbox_id: str = "") -> None:
        """Gone from the store: its exit can no longer be seen, so there is nothing to remember."""
        with self._lock:
            self._containers.discard(container_id)
            self._pods.discard(sandbox_id)

    def expected(self, c: Container) -> bool:
        with self._lock:
            return c.id in self._containers or c.sandbox_id in self._pods

    def forget(self, container_ids: Iterable[str], sandbox_ids: Iterable[str]) -> None:
        with self._lock:
            self._containers &= set(container_ids)
            self._pods &= set(sandbox_ids)


class OwnMetrics:
    def __init__(self, stops: StopRequests | None = None, recovery_seconds: float | None = None,
                 exited_before: Iterable[str] = (), quarantined: Mapping[str, int] | None = None,
                 helpers: Callable[[], HelperState] = lambda: HelperState(True)) -> None:
        """``quarantined``: how many records of each kind recovery moved aside as unreadable;
        ``helpers``: the state of the helper processes, read at scrape time."""
        self.stops = stops or StopRequests()
        self.helpers = helpers
        self.recovery_seconds = recovery_seconds
        self._quarantined = Counters()
        for kind in RECORD_KINDS:  # both series exist from the start, at 0 on a healthy node
            self._quarantined.add((kind,), (quarantined or {}).get(kind, 0))
        self.rpc_durations = Histogram(RPC_BUCKETS)
        self.phase_durations = Histogram(RPC_BUCKETS)
        self.rpcs = Counters()
        self.pulls = Counters()
        self.pull_failures = Counters()
        self.pull_bytes = Counters()
        self.pull_durations = Histogram(PULL_BUCKETS)
        self._exits = Counters()
        self._unexpected = Counters()
        self._oom = Counters()
        self._counted_lock = threading.Lock()
        # Exits recovered from disk happened under an earlier process: not counted again.
        self._counted: set[str] = set(exited_before)

    # --- events ------------------------------------------------------------------------
    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self.rpcs.add((method, code))
        self.rpc_durations.observe((method, code), seconds)

    def observe_phases(self, method: str, phases: Sequence[Span]) -> None:
        for p in phases:
            self.phase_durations.observe((method, p.name), p.seconds)

    def observe_pull(self, ok: bool, seconds: float, size: int) -> None:
        self.pulls.add()
        if not ok:
            self.pull_failures.add()
            return
        self.pull_bytes.add((), size)
        self.pull_durations.observe((), seconds)

    # --- scrape ------------------------------------------------------------------------
    def count_exits(self, containers: Sequence[Container], sandboxes: Sequence[Sandbox]) -> None:
        """Counts the exits not counted yet. Exits are seen in the records: one whose container
        was removed before any scrape saw it is missed (the kubelet keeps exited containers)."""
        with self._counted_lock:
            for c in containers:
                if c.state != State.EXITED or c.id in self._counted:
                    continue
                self._counted.add(c.id)
                self._exits.add((c.reason or "Unknown",))
                if c.reason == "OOMKilled":
                    self._oom.add()
                if c.reason != "Completed" and not self.stops.expected(c):
                    self._unexpected.add()
            self._counted &= {c.id for c in containers}
        self.stops.forget((c.id for c in containers), (s.id for s in sandboxes))

    def collect(self, containers: Sequence[Container], sandboxes: Sequence[Sandbox],
                scrape_error: bool) -> Iterator[Metric]:
        self.count_exits(containers, sandboxes)
        return self._families(containers, sandboxes, scrape_error)

    def describe(self) -> Iterator[Metric]:
        """The families (their names), for the registry's ?name[]= filters."""
        return self._families([], [], False)

    def _families(self, containers: Sequence[Container], sandboxes: Sequence[Sandbox],
                  scrape_error: bool) -> Iterator[Metric]:
        info = _metric("pycrid_build", "pycrid's version; the value is always 1.", "info")
        info.add_sample("pycrid_build_info", {"version": VERSION}, 1)
        yield info
        yield _gauge("container_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise",
                     {(): float(scrape_error)})
        if self.recovery_seconds is not None:
            yield _gauge("pycrid_recovery_duration_seconds",
                         "How long loading and reconciling sandboxes and containers took at start.",
                         {(): self.recovery_seconds})
        helpers = self.helpers()
        yield _gauge("pycrid_helper_up", "1 while the helper answers: the fork server, which new pods and pulls "
                     "need (it is restarted at once when it dies).", {("forkserver",): float(helpers.up)}, ("helper",))
        deaths = _metric("pycrid_helper_deaths", "Helper processes that died: the fork server (restarted), a pod's "
                        "monitor or pause (that pod fails, no other).", "counter")
        for kind, count in (dict.fromkeys(HELPER_KINDS, 0) | dict(helpers.deaths)).items():
            deaths.add_sample("pycrid_helper_deaths_total", {"helper": kind}, count)
        yield deaths
        yield _log_drops(containers)
        yield self._quarantined.metric("pycrid_records_quarantined_total",
                                       "Unreadable records moved aside at start (what they named was reclaimed), "
                                       "by kind.", ("kind",))
        yield _gauge("pycrid_containers", "Containers known to pycrid, by state.",
                     _by(s.name.lower() for s in (c.state for c in containers)), ("state",),
                     keys=[(s.name.lower(),) for s in State])
        yield _gauge("pycrid_pod_sandboxes", "Pod sandboxes known to pycrid, by state.",
                     _by("ready" if s.ready else "notready" for s in sandboxes), ("state",),
                     keys=[("ready",), ("notready",)])
        yield self.rpcs.metric("pycrid_rpc_requests_total", "CRI RPCs served, by method and status code.",
                               ("method", "code"))
        yield self.rpc_durations.metric("pycrid_rpc_duration_seconds",
                                        "Time to serve a CRI RPC, by method and status code.", ("method", "code"))
        yield self.phase_durations.metric(
            "pycrid_rpc_phase_duration_seconds", "Time a step of a CRI RPC took, by method and phase: where the "
            "RPC's time goes (a phase may run more than once per call, or in parallel with another).",
            ("method", "phase"))
        yield self.pulls.metric("pycrid_image_pulls_total", "Image pulls finished (successful or not).")
        yield self.pull_failures.metric("pycrid_image_pull_failures_total", "Image pulls that failed.")
        yield self.pull_bytes.metric("pycrid_image_pull_bytes_total",
                                     "Size of the images pulled (compressed, as ImageStatus reports it); "
                                     "0 for a pull that found the image already present.")
        yield self.pull_durations.metric("pycrid_image_pull_duration_seconds",
                                         "Time a successful image pull took.", ())
        yield self._exits.metric("pycrid_container_exits_total", "Containers that ended, by reason.", ("reason",))
        yield self._oom.metric("pycrid_container_oom_kills_total", "Containers that ended killed by the OOM killer.")
        yield self._unexpected.metric("pycrid_container_unexpected_exits_total",
                                      "Containers that ended on their own with an error or an OOM kill, "
                                      "without a StopContainer, RemoveContainer or StopPodSandbox for them.")


def _log_drops(containers: Sequence[Container]) -> Metric:
    """Read from each container's run dir (the pod monitor counts there); a series only for
    containers that lost lines."""
    m = _metric("pycrid_container_log_dropped_lines", "Log lines of a container lost because its log file "
               "could not be written (a full disk); the container ran on.", "counter")
    for c in containers:
        # Nearly every container has no such file: a bare access() check costs a tenth of the
        # failed open and the exception read_dropped would go through (per container, per scrape).
        lost = c.spec.state_dir and os.access(os.path.join(c.spec.state_dir, DROPPED_FILE), os.F_OK)
        lines = read_dropped(c.spec.state_dir)[0] if lost else 0
        if lines:
            m.add_sample("pycrid_container_log_dropped_lines_total", {"container_id": c.id, "container": c.config.name},
                         lines)
    return m


def _by(values: Iterable[str]) -> dict[tuple[str, ...], float]:
    counts: dict[tuple[str, ...], float] = {}
    for v in values:
        counts[(v,)] = counts.get((v,), 0) + 1
    return counts


def _gauge(name: str, documentation: str, values: dict[tuple[str, ...], float],
           label_names: tuple[str, ...] = (), keys: Sequence[tuple[str, ...]] = ()) -> Metric:
    m = _metric(name, documentation, "gauge")
    for key in keys or sorted(values):
        m.add_sample(name, dict(zip(label_names, key)), values.get(key, 0))
    return m
