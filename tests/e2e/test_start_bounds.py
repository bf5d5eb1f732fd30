"""Every container start is bounded by the caller's deadline (issue 11): a start stuck in set-up (its
init blocks opening a Localhost seccomp profile that is a FIFO) is killed when the StartContainer
deadline passes, rolled back (processes and cgroup gone, StartError recorded) and the container
stays removable; the pod and its other containers are untouched."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from runtime.linux import proc
from tests.e2e import leaks
from tests.e2e.daemon import crictl, start
from tests.e2e.leaks import container_cgroups
from tests.e2e.workloads import CONTAINER_NS, Pods, container_config, pod_config, unique


def test_a_start_stuck_in_set_up_is_killed_at_the_deadline_and_rolled_back(registry: str, tmp_path: Path) -> None:
    daemon = start(tmp_path / "pycrid", registry)
    (tmp_path / "work").mkdir()
    pods = Pods(daemon, tmp_path / "work")
    fifo = tmp_path / "profile.json"
    os.mkfifo(fifo)
    try:
        crictl(daemon, "pull", "busybox:1")
        pod, path = pods.run(pod_config(unique("bounded"), pods.log_dir))
        neighbour = pods.create(pod, path, container_config("neighbour", ["sleep", "300"]))
        stuck = pods.create(pod, path, container_config(
            "stuck", ["true"], linux={"security_context": {"namespace_options": {"pid": CONTAINER_NS},
                                                           "seccomp": {"profile_type": 2, "localhost_ref": str(fifo)}}}),
            start=False)
        with grpc.insecure_channel(daemon.endpoint) as channel:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as failed:
                pb_grpc.RuntimeServiceStub(channel).StartContainer(pb.StartContainerRequest(container_id=stuck),
                                                                   timeout=3)
            assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 5
        deadline = time.monotonic() + 10
        while (status := json.loads(crictl(daemon, "inspect", stuck).stdout)["status"])["state"] != "CONTAINER_EXITED":
            assert time.monotonic() < deadline, f"the stuck start was never rolled back: {status}"
            time.sleep(0.1)
        assert status["reason"] == "StartError" and "deadline" in status["message"], status
        monitor = json.loads(crictl(daemon, "inspectp", pod).stdout)["info"]["monitorPid"]
        assert [s.comm for s in proc.descendants(monitor)] == ["sleep"], "the stuck init was left behind"
        assert container_cgroups({stuck}) == (), "the stuck start's cgroup was left behind"
        crictl(daemon, "rm", stuck)
        assert json.loads(crictl(daemon, "inspect", neighbour).stdout)["status"]["state"] == "CONTAINER_RUNNING"
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
