"""The node's container runtime: pycrid (the cluster this is for), or one of the benchmarks' anchors for
the side-by-side benchmark under the same kubelet and cluster: containerd 1.6 + runc (Debian's, through
hack/bench/containerd.sh) or containerd 2.x + runc (built from the Go module proxy, hack/bench/containerd2.sh)."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.linux import proc
from tests.cluster import daemons, node
from tests.cluster.layout import PORTS, Layout
from tests.e2e.daemon import REPO

RUNTIMES = ("pycrid", "containerd", "containerd2")
# Each anchor's start|stop script; its state, socket and logs go in the layout's dir of its name.
ANCHOR_SCRIPTS = {name: REPO / "hack" / "bench" / f"{name}.sh" for name in ("containerd", "containerd2")}


@dataclass(frozen=True)
class Runtime:
    name: str
    layout: Layout

    @property
    def endpoint(self) -> str:
        if self.name in ANCHOR_SCRIPTS:
            return f"unix://{self.layout.path(self.name, 'containerd.sock')}"
        return f"unix://{self.layout.pycrid_socket}"

    def start(self, say: Callable[[str], None]) -> None:
        if self.name in ANCHOR_SCRIPTS:
            if not _containerd_answers(self):
                say(f"starting {self.name}")
                subprocess.run([str(ANCHOR_SCRIPTS[self.name]), "start", str(self.layout.path(self.name)),
                                str(PORTS["registry"])], check=True)
            return
        node.start_pycrid(self.layout, say)

    def crictl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=self.endpoint, IMAGE_SERVICE_ENDPOINT=self.endpoint)
        return subprocess.run(["crictl", "--timeout", "60s", *args], env=env, capture_output=True, text=True,
                              timeout=timeout)

    def stop(self, say: Callable[[str], None]) -> None:
        """Removes every pod it runs, then stops it and whatever helpers it has."""
        if self.name in ANCHOR_SCRIPTS:
            say(f"stopping {self.name} and its pods")
            subprocess.run([str(ANCHOR_SCRIPTS[self.name]), "stop", str(self.layout.path(self.name))], check=True)
            return
        forkserver = forkserver_pid(self.layout)
        if forkserver is not None and daemons.pid_of(self.layout, "pycrid") is None:
            # Its pods outlived it (by design): a pycrid started again finds them, and removes them.
            node.start_pycrid(self.layout, say)
        if daemons.pid_of(self.layout, "pycrid") is not None:
            say("removing every pod, then stopping pycrid")
            removed = self.crictl("rmp", "--all", "--force")
            if removed.returncode != 0:
                say(f"removing the pods failed: {removed.stderr.strip()}")
        daemons.stop(self.layout, "pycrid")
        # With no pod left the fork server exits by itself, once its last monitor has.
        deadline = time.monotonic() + 10
        while forkserver is not None and _running(forkserver) and time.monotonic() < deadline:
            time.sleep(0.1)


def _containerd_answers(runtime: Runtime) -> bool:
    return runtime.crictl("version", timeout=10).returncode == 0


def forkserver_pid(layout: Layout) -> int | None:
    """pycrid's fork server (it outlives `pycrid serve` while pods run)."""
    marker = str(layout.pycrid_dir / "run" / "forkserver.sock")
    return next((pid for pid in proc.pids() if marker in _cmdline(pid)), None)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    stat = proc.read_stat(pid)
    return stat is not None and stat.state != "Z"
