"""A real kubelet in standalone mode (no API server) on a pycrid under test: it runs the static pods
whose manifests the test writes, and serves its HTTPS API on loopback. Everything it makes is under
the test's directory, its own cgroup root, or pycrid; stop() removes all of it."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cgroups.manager import detect
from runtime.linux import proc
from tests.e2e.daemon import Daemon, crictl
from tests.kubelet import confinement, node_cgroups
from tests.kubelet.api import KubeletAPI, healthz
from tests.kubelet.kubelet_config import KubeletSettings, kubelet_configuration
from tests.kubelet.release import binary
from tests.ports import free_port
from tests.timescale import TIMEOUT_SCALE


@dataclass(frozen=True)
class StandaloneKubelet:
    process: subprocess.Popen[bytes]
    base: Path
    root_dir: Path
    manifests: Path
    cgroup_root: str
    node_name: str
    api: KubeletAPI
    log_path: Path

    def static_pod_name(self, manifest_name: str) -> str:
        """The kubelet names a static pod after its manifest and the node."""
        return f"{manifest_name}-{self.node_name}"

    def write_manifest(self, pod: dict[str, Any]) -> Path:
        """Writes a pod manifest for the kubelet to run; renamed into place, so the kubelet never
        reads half a file (it skips dotfiles)."""
        path = self.manifests / f"{pod['metadata']['name']}.json"
        partial = self.manifests / f".{path.name}"
        partial.write_text(json.dumps(pod))
        partial.rename(path)
        return path

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, runtime: Daemon, timeout: float = 15.0 * TIMEOUT_SCALE) -> int:
        """SIGTERM (SIGKILL after ``timeout``), then removes what it made: pods through pycrid,
        mounts under its root dir, its cgroup tree. Returns the kubelet's exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            status = self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # whatever it started and left running
            os.killpg(self.process.pid, signal.SIGKILL)
        crictl(runtime, "rmp", "--all", "--force")
        confinement.unmount_tree(self.root_dir)
        node_cgroups.remove_root(self.cgroup_root)
        return status

    def leftovers(self) -> tuple[str, ...]:
        """What is still on the machine after stop(): its cgroups, mounts under its dirs, processes
        of its session."""
        mounts = tuple(m for m in proc.mount_points() if m.startswith(f"{self.base}/"))
        return node_cgroups.left_of(self.cgroup_root) + mounts + tuple(
            f"process {pid}" for pid in proc.pids() if _session(pid) == self.process.pid)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def start(base: Path, runtime: Daemon, timeout: float = 60.0 * TIMEOUT_SCALE,
          feature_gates: dict[str, bool] | None = None) -> StandaloneKubelet:
    """Starts a kubelet on ``runtime`` with everything under ``base``; returns once /healthz is ok."""
    suffix = secrets.token_hex(3)
    dirs = {name: base / name for name in ("root", "manifests", "pod-logs", "volume-plugins", "pki")}
    for d in dirs.values():
        d.mkdir(parents=True)
    settings = KubeletSettings(
        runtime_endpoint=runtime.endpoint, static_pod_dir=dirs["manifests"], pod_logs_dir=dirs["pod-logs"],
        volume_plugin_dir=dirs["volume-plugins"], cgroup_root=f"/pycrid-kubelet-{suffix}",
        port=free_port(), healthz_port=free_port(), cgroup_v1=detect() == "v1", feature_gates=feature_gates or {})
    config = base / "kubelet.json"
    config.write_text(json.dumps(kubelet_configuration(settings), indent=2))
    node_name = f"kubelet-{suffix}"
    argv = [str(binary("kubelet")), f"--config={config}", f"--root-dir={dirs['root']}",
            f"--cert-dir={dirs['pki']}", f"--hostname-override={node_name}", "--v=2"]
    log_path = base / "kubelet.log"
    try:
        node_cgroups.make_root(settings.cgroup_root)
        confinement.share_dir(dirs["root"])
        with open(log_path, "ab") as log:
            process = subprocess.Popen(confinement.confined_command(argv, base), stdout=log, stderr=log,
                                       start_new_session=True)
    except BaseException:
        confinement.unmount_tree(dirs["root"])
        node_cgroups.remove_root(settings.cgroup_root)
        raise
    kubelet = StandaloneKubelet(process, base, dirs["root"], dirs["manifests"], settings.cgroup_root,
                                node_name, KubeletAPI(settings.port), log_path)
    deadline = time.monotonic() + timeout
    while healthz(settings.healthz_port) != "ok":
        if process.poll() is not None or time.monotonic() > deadline:
            tail = kubelet.log_tail()
            kubelet.stop(runtime)
            raise RuntimeError(f"the kubelet did not become healthy; log:\n{tail}")
        time.sleep(0.2)
    return kubelet
