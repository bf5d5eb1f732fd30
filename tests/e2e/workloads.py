"""Pods and containers for e2e tests: config builders and a helper that runs them with crictl and
remembers what it made, so the test can remove it."""
from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from tests.e2e.daemon import Daemon, crictl

BUSYBOX = "busybox:1"
NAMESPACE = "e2e-pods"
POD_NS, CONTAINER_NS = 0, 1  # NamespaceMode: the CRI default POD shares a PID namespace (with pause)


def unique(name: str) -> str:
    """Pod names get a suffix so that crictl's regex name filter can only match this test's pod."""
    return f"{name}-{secrets.token_hex(3)}"


def pod_config(name: str, log_dir: Path, *, pid: int = CONTAINER_NS, **extra: object) -> dict:
    return {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"},
            "log_directory": str(log_dir),
            "linux": {"security_context": {"namespace_options": {"pid": pid}}}, **extra}


def container_config(name: str, command: list[str], *, pid: int = CONTAINER_NS, image: str = BUSYBOX,
                     **extra: object) -> dict:
    return {"metadata": {"name": name}, "image": {"image": image}, "command": command,
            "log_path": f"{name}.log",
            "linux": {"security_context": {"namespace_options": {"pid": pid}}}, **extra}


class Pods:
    """Runs pods and containers from config dicts; remembers the pods to remove them afterwards."""

    def __init__(self, daemon: Daemon, tmp_path: Path) -> None:
        self.daemon = daemon
        self.dir = tmp_path
        self.log_dir = tmp_path / "logs"
        self.log_dir.mkdir()
        self.made: list[str] = []
        self._n = 0

    def write(self, config: dict) -> str:
        self._n += 1
        path = self.dir / f"config-{self._n}.json"
        path.write_text(json.dumps(config))
        return str(path)

    def run(self, config: dict) -> tuple[str, str]:
        """`crictl runp`: returns the pod ID and the config file (create needs it again)."""
        path = self.write(config)
        pod_id = crictl(self.daemon, "runp", path).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{64}", pod_id), pod_id
        self.made.append(pod_id)
        return pod_id, path

    def create(self, pod_id: str, pod_path: str, config: dict, start: bool = True) -> str:
        container_id = crictl(self.daemon, "create", pod_id, self.write(config), pod_path).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{64}", container_id), container_id
        if start:
            crictl(self.daemon, "start", container_id)
        return container_id

    def remove_all(self) -> None:
        for pod_id in self.made:
            crictl(self.daemon, "rmp", "-f", pod_id, check=False)


def container_pid(daemon: Daemon, container_id: str) -> int:
    """The host pid of a running container's init, as `crictl inspect` reports it."""
    return json.loads(crictl(daemon, "inspect", container_id).stdout)["info"]["pid"]
