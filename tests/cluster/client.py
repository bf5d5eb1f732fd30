"""What the cluster tests do to the cluster, as a user would: kubectl (hack/cluster/kubectl), commands
inside the cluster's network namespace (hack/cluster/exec: curl, a terminal for `exec -it`), and
crictl on the node's pycrid for what only the node can tell."""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.cluster import daemons
from tests.cluster.layout import Layout
from tests.e2e.daemon import REPO
from tests.timescale import CLUSTER_TIMEOUT_SCALE, stretched_waits

T = TypeVar("T")
HACK = REPO / "hack" / "cluster"
UP_TIMEOUT = 300 * CLUSTER_TIMEOUT_SCALE  # hack/cluster/up: its kubectl waits stretch as well


@dataclass(frozen=True)
class Cluster:
    layout: Layout

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, PYCRID_CLUSTER_DIR=str(self.layout.base))

    def kubectl_argv(self, *args: str) -> list[str]:
        """For a kubectl to run in the background (with env=self.env)."""
        return [str(HACK / "kubectl"), *args]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """kubectl; its waits (``--timeout=Ns`` and ``timeout``) stretch by CLUSTER_TIMEOUT_SCALE."""
        done = subprocess.run(self.kubectl_argv(*stretched_waits(args)), input=input, capture_output=True,
                              text=True, env=self.env, timeout=timeout * CLUSTER_TIMEOUT_SCALE)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    def inside(self, *argv: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``argv`` in the cluster's network namespace (hack/cluster/exec)."""
        return subprocess.run([str(HACK / "exec"), *argv], input=input, capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": list(objects)}))

    def get(self, *args: str) -> dict[str, Any]:
        found = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        assert isinstance(found, dict)
        return found

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get("-n", namespace, "pod", name)

    def wait_ready(self, namespace: str, *targets: str, timeout: int = 90) -> None:
        self.kubectl("-n", namespace, "wait", "--for=condition=Ready", *targets, f"--timeout={timeout}s",
                     timeout=timeout + 30)

    def crictl(self, *args: str) -> subprocess.CompletedProcess[str]:
        endpoint = f"unix://{self.layout.pycrid_socket}"
        env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=endpoint, IMAGE_SERVICE_ENDPOINT=endpoint)
        return subprocess.run(["crictl", "--timeout", "60s", *args], capture_output=True, text=True, timeout=120,
                              env=env)

    def log(self, component: str, chars: int = 6000) -> str:
        return daemons.log_tail(self.layout, component, chars)

    def diagnosis(self) -> str:
        """The logs that explain a failure: the kubelet's and pycrid's tails."""
        return f"kubelet log:\n{self.log('kubelet', 3000)}\npycrid log:\n{self.log('pycrid', 3000)}"


def eventually(what: str, probe: Callable[[], T | None], timeout: float, why: Callable[[], str] = lambda: "",
               interval: float = 0.5) -> T:
    """Polls ``probe`` until it returns something other than None (``timeout`` stretched by
    CLUSTER_TIMEOUT_SCALE)."""
    timeout *= CLUSTER_TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}\n{why()}"
        time.sleep(interval)
    return found
