"""A real Prometheus (Debian's) scraping a real pycrid every second.

pycrid runs with metrics on a free loopback port (tests/e2e/daemon.py), with a local registry
holding busybox and pause; Prometheus gets a config and a storage dir of its own under tmp. Then:
the target is up; the working set Prometheus stored for a container holding 64 MiB agrees with the
one computed from its cgroup files; the CPU rate of a busy loop is near a core and agrees with its
cgroup's cpuacct; the series go away once the container is removed. Everything is torn down in
``finally`` blocks: Prometheus, pods, pycrid and its fork server, the bridge, the pod cgroups and
the registry.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from tests.e2e import leaks
from tests.e2e.daemon import REPO, TIMEOUT_SCALE, Daemon, start
from tests.ports import free_port

pytestmark = pytest.mark.root

PROMETHEUS = "/usr/bin/prometheus"
CGROUP = Path("/sys/fs/cgroup")
V2 = (CGROUP / "cgroup.controllers").exists()  # the unified hierarchy (hack/vm's guest), else v1
MIB = 1024 * 1024
# The cgroup parent the kubelet would give the pod; ours alone, removed at the end.
PARENT = f"/pycrid-itest-{secrets.token_hex(3)}"
# The shell keeps the string; it must not end with a command it would exec in its own place.
HOLD_64_MIB = 'x=$(yes aaaaaaaaaaaaaaa | head -c 67108864); echo held ${#x}; sleep 3600; echo ${#x}'
BUSY = "while :; do :; done"


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0, interval: float = 0.25) -> object:
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """hack/registry.sh and hack/images.sh, as tests/e2e/conftest.py uses them (only the images
    used here are pushed)."""
    base, port = tmp_path_factory.mktemp("registry"), free_port()
    subprocess.run([REPO / "hack" / "registry.sh", "start", base, str(port)], check=True)
    try:
        subprocess.run([REPO / "hack" / "images.sh", "push", f"127.0.0.1:{port}", "library/busybox:1",
                        "pause:3.10"], check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([REPO / "hack" / "registry.sh", "stop", base], check=True)


@pytest.fixture(scope="module")
def pycrid(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[tuple[Daemon, int]]:
    port = free_port()
    daemon = start(tmp_path_factory.mktemp("pycrid"), registry, metrics_address=f"127.0.0.1:{port}")
    try:
        yield daemon, port
    finally:
        with pytest.MonkeyPatch.context() as env:  # the leak check removes pods with crictl
            env.setenv("PATH", f"{os.environ.get('PYCRID_CACHE', '/var/cache/pycrid-dev')}/bin:{os.environ['PATH']}")
            try:
                left, _ = leaks.remove_everything(daemon)
            finally:
                remove_cgroups(PARENT)
        assert left.empty(), f"pycrid left behind: {left}"


def remove_cgroups(parent: str) -> None:
    for hierarchy in [CGROUP] if V2 else CGROUP.iterdir():
        top = hierarchy / parent.lstrip("/")
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                d.rmdir()
            top.rmdir()


class Prometheus:
    def __init__(self, base: Path, target: str) -> None:
        self.port = free_port()
        config = base / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: pycrid\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.storage = base / "data"
        self.log = open(base / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.storage}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=self.log, start_new_session=True)
        wait_for("prometheus to be ready", self.ready)

    def ready(self) -> bool:
        assert self.process.poll() is None, "prometheus exited; see prometheus.log"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.storage, ignore_errors=True)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, pycrid: tuple[Daemon, int]) -> Iterator[Prometheus]:
    assert os.access(PROMETHEUS, os.X_OK), "Debian's prometheus package is not installed (hack/install.sh)"
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{pycrid[1]}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runtime(pycrid: tuple[Daemon, int]) -> Iterator[pb_grpc.RuntimeServiceStub]:
    channel = grpc.insecure_channel(pycrid[0].endpoint)
    pb_grpc.ImageServiceStub(channel).PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="busybox:1")))
    yield pb_grpc.RuntimeServiceStub(channel)
    channel.close()


def run_container(runtime: pb_grpc.RuntimeServiceStub, tmp: Path, name: str, script: str) -> tuple[str, str, str]:
    """A pod (with its own cgroup parent, as the kubelet makes) running one busybox sh; returns
    the pod id, container id and the container's cgroup path."""
    pod = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace="itest", uid=f"uid-{name}"),
                              log_directory=str(tmp / name), linux=pb.LinuxPodSandboxConfig(
                                  cgroup_parent=f"{PARENT}/pod-{name}"))
    pod_id = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="busybox:1"),
                                command=["sh", "-c", script], log_path=f"{name}.log")
    cid = runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                            sandbox_config=pod)).container_id
    runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    status = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True))
    return pod_id, cid, json.loads(status.info["info"])["cgroup"]


def read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def working_set_from_files(cgroup: str) -> int:
    """cAdvisor's definition, straight from the cgroup's files: usage - inactive file pages
    (v1: memory.usage_in_bytes - total_inactive_file; v2: memory.current - inactive_file)."""
    memory = CGROUP / ("" if V2 else "memory") / cgroup.lstrip("/")
    stat = dict(line.split() for line in (memory / "memory.stat").read_text().splitlines())
    if V2:
        return max(read_int(memory / "memory.current") - int(stat["inactive_file"]), 0)
    return max(read_int(memory / "memory.usage_in_bytes") - int(stat["total_inactive_file"]), 0)


def cpu_seconds_from_files(cgroup: str) -> float:
    if V2:
        stat = dict(line.split() for line in (CGROUP / cgroup.lstrip("/") / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6
    return read_int(CGROUP / "cpuacct" / cgroup.lstrip("/") / "cpuacct.usage") / 1e9


def test_prometheus_scrapes_pycrid(prometheus: Prometheus, runtime: pb_grpc.RuntimeServiceStub,
                                   tmp_path: Path) -> None:
    assert wait_for("up == 1", lambda: prometheus.value('up{job="pycrid"}') == 1.0)
    assert prometheus.value('pycrid_build_info{job="pycrid"}') == 1.0

    mem_pod, mem_id, mem_cgroup = run_container(runtime, tmp_path, "mem", HOLD_64_MIB)
    busy_pod, busy_id, busy_cgroup = run_container(runtime, tmp_path, "spin", BUSY)
    wait_for("the 64 MiB to be held", lambda: (tmp_path / "mem" / "mem.log").exists()
             and "held" in (tmp_path / "mem" / "mem.log").read_text())

    # Memory: what Prometheus stored vs. the cgroup files read right after a scrape.
    ws = 'container_memory_working_set_bytes{job="pycrid",container="mem"}'
    wait_for("the working set series", lambda: prometheus.value(ws))
    time.sleep(2)  # a couple of scrapes after the value settled
    stored, from_files = prometheus.value(ws), working_set_from_files(mem_cgroup)
    print(f"working set: prometheus {stored / MIB:.2f} MiB, cgroup files {from_files / MIB:.2f} MiB")
    assert from_files >= 64 * MIB
    assert abs(stored - from_files) <= 0.05 * from_files
    labels = prometheus.query(ws)[0]["metric"]
    assert labels["id"] == mem_cgroup and labels["name"] == mem_id and labels["namespace"] == "itest"
    assert labels["pod"] == "mem" and labels["image"] == "busybox:1"
    pod_ws = prometheus.value('container_memory_working_set_bytes{job="pycrid",pod="mem",container=""}')
    assert pod_ws is not None and pod_ws >= 64 * MIB  # the pod cgroup holds its container's memory
    assert prometheus.query('container_network_receive_bytes_total{job="pycrid",pod="mem",interface="eth0"}')

    # CPU: a busy loop's rate over 10 s vs. its cgroup's cpuacct over the same window.
    usage = 'container_cpu_usage_seconds_total{job="pycrid",container="spin",cpu="total"}'
    wait_for("the cpu series", lambda: prometheus.value(usage))
    start_t, start_cpu = time.monotonic(), cpu_seconds_from_files(busy_cgroup)
    time.sleep(10.5)
    rate = prometheus.value(f"rate({usage}[10s])")
    measured = (cpu_seconds_from_files(busy_cgroup) - start_cpu) / (time.monotonic() - start_t)
    print(f"busy loop: rate() {rate:.3f} cores, cgroup cpuacct {measured:.3f} cores")
    assert abs(rate - measured) <= 0.1
    # One spinning thread is one core at most; it gets near one unless other work shares the 2 CPUs,
    # which cpuacct then shows too (and rate() must still agree with it).
    assert rate <= 1.1 and (rate >= 0.8 or measured < 0.8), (rate, measured)

    # Gone: a couple of scrapes after removal, no series of the container is left.
    runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=mem_id))
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=mem_pod))
    wait_for("the series to go", lambda: not prometheus.query('{job="pycrid",pod="mem"}'), timeout=15)
    assert prometheus.query(f'{{job="pycrid",container="spin",name="{busy_id}"}}')  # the other stays
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=busy_pod))
    wait_for("the other series to go", lambda: not prometheus.query('{job="pycrid",pod="spin"}'), timeout=15)
    assert prometheus.value('sum(pycrid_rpc_requests_total{job="pycrid",method="RunPodSandbox",code="OK"})') == 2
