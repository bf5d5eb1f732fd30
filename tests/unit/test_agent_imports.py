"""What the agent loads at start is what every agent needs: the metrics exporter (prometheus_client)
only where metrics are exported (cri/app.py imports it then), the checkpoint code (CRIU, archives)
only at the first checkpoint or restore, the streaming protocols (SPDY, WebSocket) at the first
exec/attach/port-forward session, the layer unpacking code (tarfile, the decompressors) at the
first layer the agent unpacks itself or archive it imports, each pod network's code (the bridge's,
CNI's) when the config chooses it. Together ~8 MiB of an idle agent's memory."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ON_DEMAND = ("prometheus_client", "metrics.collector", "metrics.server", "metrics.exposition",
             "runtime.checkpoint.dump", "runtime.checkpoint.restore", "runtime.checkpoint.archive",
             "runtime.checkpoint.criu", "runtime.checkpoint.rootfsdiff",
             "cri.streaming.sessions", "cri.streaming.spdy_serve", "cri.streaming.ws_serve",
             "cri.streaming.remotecommand", "wsproto", "h11",
             "runtime.image.unpack", "runtime.image.archive", "tarfile", "zstandard",
             "runtime.network.bridge", "runtime.network.cni", "runtime.network.cniwatch")


def test_the_agent_loads_code_most_agents_never_run_on_demand() -> None:
    probe = "import json, sys; import cri.__main__, cri.app; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert "cri.app" in loaded and "runtime.container.manager" in loaded
    assert [m for m in loaded if any(m == d or m.startswith(d + ".") for d in ON_DEMAND)] == []


def test_the_agent_serves_grpc_without_grpcio_or_h2() -> None:
    # Those are the tests' clients; cri/rpc speaks HTTP/2 itself (grpcio alone was ~21 MiB of PSS).
    probe = "import json, sys; import cri.__main__, cri.app, cri.server; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert "cri.rpc.connection" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("grpc", "h2", "hyperframe")] == []
