from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metrics.own import Histogram, OwnMetrics, StopRequests
from runtime.process.monitor import DROPPED_FILE, write_dropped
from runtime.process.supervisor import HelperState
from runtime.spans import Span
from tests.unit.stats.builders import APP, SIDE, WEB, WORKER, scene


class Own:
    def __init__(self, own: OwnMetrics, containers: list, sandboxes: list) -> None:
        self.own, self.containers, self.sandboxes = own, containers, sandboxes

    def collect(self):  # noqa: ANN201
        return self.own.collect(self.containers, self.sandboxes, False)


def samples(own: OwnMetrics, containers: list | None = None, sandboxes: list | None = None) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Own(own, containers or [], sandboxes or []))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 0.5, 3.0):
        h.observe(("x",), v)
    m = h.metric("t_seconds", "doc", ("k",))
    by = {(s.name, s.labels.get("le")): s.value for s in m.samples}
    assert by[("t_seconds_bucket", "0.1")] == 1 and by[("t_seconds_bucket", "1.0")] == 3
    assert by[("t_seconds_bucket", "+Inf")] == 4 and by[("t_seconds_count", None)] == 4
    assert by[("t_seconds_sum", None)] == 4.05


def test_rpcs_and_pulls_are_counted() -> None:
    own = OwnMetrics(recovery_seconds=0.25)
    own.observe_rpc("RunPodSandbox", "OK", 0.02)
    own.observe_rpc("RunPodSandbox", "NOT_FOUND", 0.001)
    own.observe_pull(True, 1.5, 1000)
    own.observe_pull(False, 0.1, 0)
    s = samples(own)
    assert s[("pycrid_rpc_requests_total", (("code", "OK"), ("method", "RunPodSandbox")))] == 1
    assert s[("pycrid_rpc_duration_seconds_count", (("code", "NOT_FOUND"), ("method", "RunPodSandbox")))] == 1
    assert s[("pycrid_image_pulls_total", ())] == 2
    assert s[("pycrid_image_pull_failures_total", ())] == 1
    assert s[("pycrid_image_pull_bytes_total", ())] == 1000
    assert s[("pycrid_image_pull_duration_seconds_count", ())] == 1
    assert s[("pycrid_recovery_duration_seconds", ())] == 0.25
    assert s[("pycrid_build_info", (("version", "0.1.0"),))] == 1
    assert s[("container_scrape_error", ())] == 0


def test_rpc_phases_are_histograms_by_method_and_phase() -> None:
    own = OwnMetrics()
    own.observe_phases("StartContainer", [Span("cgroup", 0.001), Span("init.rootfs", 0.004)])
    own.observe_phases("StartContainer", [Span("cgroup", 0.002)])
    s = samples(own)
    key = (("method", "StartContainer"), ("phase", "cgroup"))
    assert s[("pycrid_rpc_phase_duration_seconds_count", key)] == 2
    assert s[("pycrid_rpc_phase_duration_seconds_sum", key)] == 0.003
    assert s[("pycrid_rpc_phase_duration_seconds_bucket", (("le", "0.001"), *key))] == 1
    assert s[("pycrid_rpc_phase_duration_seconds_count", (("method", "StartContainer"), ("phase", "init.rootfs")))] == 1


def test_unlabelled_counters_exist_before_anything_happens() -> None:
    s = samples(OwnMetrics())
    assert s[("pycrid_image_pulls_total", ())] == 0 and s[("pycrid_container_oom_kills_total", ())] == 0
    assert s[("pycrid_image_pull_duration_seconds_count", ())] == 0


def test_containers_and_pods_by_state() -> None:
    sandboxes, containers = scene("v1")
    s = samples(OwnMetrics(), containers, sandboxes)
    assert s[("pycrid_containers", (("state", "running"),))] == 3
    assert s[("pycrid_containers", (("state", "exited"),))] == 1
    assert s[("pycrid_containers", (("state", "created"),))] == 0
    assert s[("pycrid_pod_sandboxes", (("state", "ready"),))] == 2
    assert s[("pycrid_pod_sandboxes", (("state", "notready"),))] == 1


def test_exits_are_counted_once_and_told_apart() -> None:
    sandboxes, containers = scene("v1")
    stops = StopRequests()
    own = OwnMetrics(stops, exited_before=[c.id for c in containers if c.finished_at])  # "init" before start
    by_id = {c.id: c for c in containers}

    def exited(cid: str, reason: str, code: int) -> None:
        by_id[cid] = replace(by_id[cid], finished_at=by_id[cid].started_at + 1, exit_code=code, reason=reason)

    stops.container(APP)
    exited(APP, "Error", 143)  # asked to stop: expected
    exited(SIDE, "OOMKilled", 137)  # on its own: unexpected
    exited(WORKER, "Completed", 0)  # finished its work
    s = samples(own, list(by_id.values()), sandboxes)
    assert s[("pycrid_container_exits_total", (("reason", "Error"),))] == 1
    assert s[("pycrid_container_exits_total", (("reason", "OOMKilled"),))] == 1
    assert s[("pycrid_container_exits_total", (("reason", "Completed"),))] == 1  # "init" is not counted again
    assert s[("pycrid_container_oom_kills_total", ())] == 1
    assert s[("pycrid_container_unexpected_exits_total", ())] == 1
    again = samples(own, list(by_id.values()), sandboxes)
    assert again[("pycrid_container_exits_total", (("reason", "Error"),))] == 1


def test_a_stopped_pod_makes_its_containers_exits_expected() -> None:
    sandboxes, containers = scene("v1")
    stops = StopRequests()
    own = OwnMetrics(stops)
    stops.pod(WEB)
    done = [replace(c, finished_at=c.started_at + 1, exit_code=137, reason="Error") if c.sandbox_id == WEB
            and not c.finished_at else c for c in containers]
    s = samples(own, done, sandboxes)
    assert s[("pycrid_container_exits_total", (("reason", "Error"),))] == 2
    assert s[("pycrid_container_unexpected_exits_total", ())] == 0


def test_stop_requests_are_forgotten_with_their_objects() -> None:
    stops = StopRequests()
    stops.container("a")
    stops.pod("p")
    stops.forget(["b"], ["p"])
    _, containers = scene("v1")
    assert not stops.expected(replace(containers[0], id="a", sandbox_id="q"))
    assert stops.expected(replace(containers[0], id="x", sandbox_id="p"))
    stops.removed(sandbox_id="p")
    assert not stops.expected(replace(containers[0], id="x", sandbox_id="p"))


def test_quarantined_records_are_counted_by_kind() -> None:
    s = samples(OwnMetrics(quarantined={"sandbox": 1, "container": 2}))
    assert s[("pycrid_records_quarantined_total", (("kind", "container"),))] == 2
    assert s[("pycrid_records_quarantined_total", (("kind", "sandbox"),))] == 1
    healthy = samples(OwnMetrics())
    assert healthy[("pycrid_records_quarantined_total", (("kind", "container"),))] == 0
    assert healthy[("pycrid_records_quarantined_total", (("kind", "sandbox"),))] == 0


def test_helpers_up_and_their_deaths_by_kind() -> None:
    down = HelperState(False, "the fork server is down", (("forkserver", 2), ("monitor", 1), ("pause", 0)))
    s = samples(OwnMetrics(helpers=lambda: down))
    assert s[("pycrid_helper_up", (("helper", "forkserver"),))] == 0
    assert s[("pycrid_helper_deaths_total", (("helper", "forkserver"),))] == 2
    assert s[("pycrid_helper_deaths_total", (("helper", "monitor"),))] == 1
    healthy = samples(OwnMetrics())
    assert healthy[("pycrid_helper_up", (("helper", "forkserver"),))] == 1
    assert healthy[("pycrid_helper_deaths_total", (("helper", "pause"),))] == 0


def test_lost_log_lines_are_counted_per_container(tmp_path) -> None:
    _, containers = scene("v1")
    lossy, clean = containers[0], containers[1]
    lossy = replace(lossy, spec=replace(lossy.spec, state_dir=str(tmp_path / "lossy")))
    clean = replace(clean, spec=replace(clean.spec, state_dir=str(tmp_path / "clean")))
    (tmp_path / "lossy").mkdir()
    (tmp_path / "clean").mkdir()
    write_dropped(str(tmp_path / "lossy" / DROPPED_FILE), 12, 3400)
    s = samples(OwnMetrics(), [lossy, clean])
    assert s[("pycrid_container_log_dropped_lines_total",
              (("container", lossy.config.name), ("container_id", lossy.id)))] == 12
    assert not any(name == "pycrid_container_log_dropped_lines_total" and dict(labels)["container_id"] == clean.id
                   for name, labels in s)
