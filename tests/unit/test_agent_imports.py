"""What the agent loads at start is what every agent needs: the metrics exporter (prometheus_client)
only where metrics are exported (cri/app.py imports it then), the checkpoint code (CRIU, archives)
only at the first checkpoint or restore. Together ~6 MiB of an idle agent's memory."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ON_DEMAND = ("prometheus_client", "metrics.collector", "metrics.server", "metrics.exposition",
             "runtime.checkpoint.dump", "runtime.checkpoint.restore", "runtime.checkpoint.archive",
             "runtime.checkpoint.criu", "runtime.checkpoint.rootfsdiff")


def test_the_agent_loads_the_exporter_and_the_checkpoint_code_on_demand() -> None:
    probe = "import json, sys; import cri.__main__, cri.app; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert "cri.app" in loaded and "runtime.container.manager" in loaded
    assert [m for m in loaded if any(m == d or m.startswith(d + ".") for d in ON_DEMAND)] == []
