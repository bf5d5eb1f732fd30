"""The fork server imports its children's code and no more: every page it holds is shared by
each pod monitor, and what a monitor writes to is copied into it. The agent's pull path, its
gRPC client and the network code are not a child's business."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
AGENT_ONLY = ("runtime.image.manager", "runtime.image.registry", "runtime.image.transport",
              "runtime.process.client", "runtime.network", "http.client", "ssl", "concurrent.futures",
              "grpc", "pyroute2", "prometheus_client",
              # A restore's CRIU driver (and subprocess with it) loads in the monitor that restores.
              "runtime.checkpoint.restorer", "runtime.checkpoint.criu", "subprocess")


def test_the_fork_server_and_its_targets_import_no_agent_code() -> None:
    probe = ("import json, sys; from runtime.process import forkserver; forkserver.load_targets([]); "
             "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    found = [m for m in loaded if any(m == a or m.startswith(a + ".") for a in AGENT_ONLY)]
    assert found == []
