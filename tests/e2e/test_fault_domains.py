"""The death of any one pycrid helper costs at most one pod (issue 11): under 20 running pods, the
fork server, a pod's monitor, a pod's pause and an exec child are each SIGKILLed; the other pods
keep running with the same processes, their logs keep flowing and their exits keep their true
codes, the agent restarts the fork server within 2 s and new pods start."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from runtime.linux import proc
from runtime.process.client import ForkServer
from tests.e2e import leaks
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import POD_NS, Pods, container_config, container_pid, pod_config, unique
from tests.ports import free_port
from tests.timescale import TIMEOUT_SCALE

PODS = 20
TICKER = "trap 'exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 2.0) -> float:
    """Seconds until ``predicate`` held; fails the test after ``timeout`` (times the emulated v2
    guest's scale, where each crictl call alone takes over a second; 1 on real hardware)."""
    timeout *= TIMEOUT_SCALE
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - started


def inspectp(daemon: Daemon, pod: str) -> dict:
    return json.loads(crictl(daemon, "inspectp", pod).stdout)


def inspect(daemon: Daemon, container: str) -> dict:
    return json.loads(crictl(daemon, "inspect", container).stdout)


def forkserver_pid(daemon: Daemon) -> int:
    try:
        return ForkServer(str(daemon.state / "forkserver.sock")).ping()
    except Exception:  # noqa: BLE001 - down: being restarted
        return 0


def log_size(daemon: Daemon, container: str) -> int:
    return Path(inspect(daemon, container)["status"]["logPath"]).stat().st_size


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def run_ticker(daemon: Daemon, pods: Pods, n: int) -> tuple[str, str]:
    pod, path = pods.run(pod_config(unique(f"fault{n}"), pods.log_dir, pid=POD_NS))
    return pod, pods.create(pod, path, container_config("tick", ["sh", "-c", TICKER], pid=POD_NS))


def test_each_helper_death_costs_at_most_its_own_pod(registry: str, tmp_path: Path) -> None:
    port = free_port()
    daemon = start(tmp_path / "pycrid", registry, metrics_address=f"127.0.0.1:{port}")
    (tmp_path / "work").mkdir()
    pods = Pods(daemon, tmp_path / "work")
    try:
        crictl(daemon, "pull", "busybox:1")
        running = [run_ticker(daemon, pods, n) for n in range(PODS)]
        pids = {c: container_pid(daemon, c) for _, c in running}
        sizes = {c: log_size(daemon, c) for _, c in running}
        (lost_monitor, lost_monitor_ctr), (lost_pause, lost_pause_ctr), (exec_pod, exec_ctr) = running[:3]
        bystanders = running[2:]

        # The fork server: restarted at once; running pods do not need it.
        old = forkserver_pid(daemon)
        os.kill(old, signal.SIGKILL)
        took = wait_for("a new fork server", lambda: forkserver_pid(daemon) not in (0, old))
        print(f"fork server {old} killed; a new one answered after {took:.2f}s")
        new_pod, new_ctr = run_ticker(daemon, pods, PODS)
        assert inspect(daemon, new_ctr)["status"]["state"] == "CONTAINER_RUNNING"

        # One pod's monitor: that pod fails (NotReady, its container ended), no other.
        monitor = inspectp(daemon, lost_monitor)["info"]["monitorPid"]
        os.kill(monitor, signal.SIGKILL)
        took = wait_for("the pod of a dead monitor NotReady",
                        lambda: inspectp(daemon, lost_monitor)["status"]["state"] == "SANDBOX_NOTREADY")
        print(f"monitor {monitor} killed; its pod NotReady after {took:.2f}s")
        # Its container is ended and recorded next (the exit the dead monitor cannot write: 255).
        wait_for("the container of a dead monitor exited",
                 lambda: inspect(daemon, lost_monitor_ctr)["status"]["state"] == "CONTAINER_EXITED", timeout=5)
        status = inspect(daemon, lost_monitor_ctr)["status"]
        assert (status["state"], status["exitCode"]) == ("CONTAINER_EXITED", 255), status
        assert "monitor" in status["message"], status
        # Dead (its reaper may be PID 1 by now, which reaps only every ~2 s here: the monitor's
        # parent was the fork server killed above).
        left_over = proc.read_stat(pids[lost_monitor_ctr])
        assert left_over is None or left_over.state == "Z", f"its container was left running: {left_over}"

        # One pod's pause: its PID namespace dies with it, the pod fails; the monitor, still
        # alive, records its container's real end (SIGKILL with the namespace: 137).
        pause = inspectp(daemon, lost_pause)["info"]["pausePid"]
        os.kill(pause, signal.SIGKILL)
        wait_for("the pod of a dead pause NotReady",
                 lambda: inspectp(daemon, lost_pause)["status"]["state"] == "SANDBOX_NOTREADY")
        wait_for("the container of a dead pause exited",
                 lambda: inspect(daemon, lost_pause_ctr)["status"]["state"] == "CONTAINER_EXITED", timeout=5)
        status = inspect(daemon, lost_pause_ctr)["status"]
        assert (status["state"], status["exitCode"]) == ("CONTAINER_EXITED", 137), status

        # An exec child: that ExecSync fails at once, and the command it left is ended.
        execution = subprocess.Popen(["crictl", "--runtime-endpoint", daemon.endpoint, "exec", "-s", "--timeout",
                                      "60", exec_ctr, "sleep", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        monitor = inspectp(daemon, exec_pod)["info"]["monitorPid"]

        def exec_command() -> list[tuple[int, int]]:
            """(exec child, the command it runs): `sleep 30` below a pycrid-exec of this monitor."""
            children = {s.pid for s in proc.descendants(monitor) if s.comm == "pycrid-exec" and s.ppid == monitor}
            return [(s.ppid, s.pid) for s in proc.descendants(monitor) if s.ppid in children and s.comm == "sleep"]
        wait_for("the exec command", lambda: bool(exec_command()), timeout=10)
        ((exec_child, command),) = exec_command()
        os.kill(exec_child, signal.SIGKILL)
        assert execution.wait(5 * TIMEOUT_SCALE) != 0, "ExecSync succeeded although its process was killed"
        wait_for("the orphaned exec command ended",
                 lambda: (s := proc.read_stat(command)) is None or s.state == "Z")

        # Everything else as it was: same processes, logs still growing, true exit codes.
        time.sleep(0.5)
        for pod, ctr in bystanders:
            assert inspectp(daemon, pod)["status"]["state"] == "SANDBOX_READY", pod
            assert inspect(daemon, ctr)["status"]["state"] == "CONTAINER_RUNNING", ctr
            assert container_pid(daemon, ctr) == pids[ctr]
            assert log_size(daemon, ctr) > sizes[ctr], f"the log of {ctr} stopped"
        crictl(daemon, "stop", "--timeout", "10", exec_ctr)
        status = inspect(daemon, exec_ctr)["status"]
        assert (status["exitCode"], status["reason"]) == (7, "Error"), status

        info = json.loads(crictl(daemon, "info").stdout)
        assert {c["type"]: c["status"] for c in info["status"]["conditions"]}["RuntimeReady"] is True
        metrics = scrape(port)
        for helper in ("forkserver", "monitor", "pause"):
            assert f'pycrid_helper_deaths_total{{helper="{helper}"}} 1.0' in metrics, metrics
        assert 'pycrid_helper_up{helper="forkserver"} 1.0' in metrics
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
