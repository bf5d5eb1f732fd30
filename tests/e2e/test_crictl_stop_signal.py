"""StopContainer sends the container's stop signal, and ContainerStatus says which: here the CRI's
stop_signal (SIGUSR1), which the container's shell traps to exit 42. Had SIGTERM been sent, the
shell (PID 1 of its namespace, with no TERM trap) would have ignored it until the SIGKILL after the
timeout (exit 137)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from cri.api.v1 import api_pb2 as pb
from tests.e2e.daemon import crictl
from tests.e2e.workloads import Pods, container_config, pod_config, unique

TRAP = ["sh", "-c", "trap 'echo got USR1; exit 42' USR1; echo trapping; while :; do sleep 0.1; done"]


def _status(pods: Pods, container_id: str) -> dict:
    return json.loads(crictl(pods.daemon, "inspect", container_id).stdout)["status"]


def test_stop_sends_the_stop_signal_the_status_reports(pods: Pods) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("stopsig"), pods.log_dir))
    # crictl reads configs into the Go structs, where an enum is its number.
    config = container_config("trapper", TRAP, stop_signal=int(pb.SIGUSR1))
    container_id = pods.create(pod_id, pod_path, config)
    log = Path(pods.log_dir) / "trapper.log"
    deadline = time.monotonic() + 10
    while "trapping" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the container's trap was not set up"
        time.sleep(0.05)
    assert _status(pods, container_id)["stopSignal"] == "SIGUSR1"
    crictl(pods.daemon, "stop", "--timeout", "10", container_id)
    status = _status(pods, container_id)
    assert (status["state"], status["exitCode"]) == ("CONTAINER_EXITED", 42)
    assert "got USR1" in log.read_text()


def test_without_one_the_status_says_sigterm(pods: Pods) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("stopsig"), pods.log_dir))
    container_id = pods.create(pod_id, pod_path, container_config("plain", ["sleep", "3600"]), start=False)
    assert _status(pods, container_id)["stopSignal"] == "SIGTERM"  # busybox's image sets no STOPSIGNAL
