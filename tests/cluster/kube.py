"""kubectl as the cluster's admin, inside the cluster's network namespace (from anywhere)."""
from __future__ import annotations

import subprocess

from tests.cluster import netns
from tests.cluster.layout import Layout
from tests.kubelet.release import binary
from tests.timescale import CLUSTER_TIMEOUT_SCALE, stretched_waits


def kubectl(layout: Layout, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs kubectl and returns what it did; with ``check``, a failure raises with its output. Its
    waits stretch by CLUSTER_TIMEOUT_SCALE."""
    argv = netns.command(layout, [str(binary("kubectl")), f"--kubeconfig={layout.kubeconfig('admin')}",
                                  *stretched_waits(args)])
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout * CLUSTER_TIMEOUT_SCALE)
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done
