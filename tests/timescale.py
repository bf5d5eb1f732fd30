"""How much longer tests wait for things to start where everything runs slower: hack/vm/run.sh
sets PYCRID_TEST_TIMEOUT_SCALE in an emulated guest, where Python runs some 15 times slower and a
fork server or an agent takes most of a minute to import pycrid."""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

TIMEOUT_SCALE = float(os.environ.get("PYCRID_TEST_TIMEOUT_SCALE", "1"))
# The cluster's waits are on Go daemons as much as on Python, which an emulated guest slows less,
# and a long wait is what a real hang costs: they stretch by at most this.
CLUSTER_TIMEOUT_SCALE = min(TIMEOUT_SCALE, 2.0)


def stretched_waits(args: Sequence[str]) -> list[str]:
    """kubectl's arguments with each ``--timeout=Ns`` wait stretched by CLUSTER_TIMEOUT_SCALE."""
    return [f"--timeout={int(m.group(1)) * CLUSTER_TIMEOUT_SCALE:.0f}s"
            if (m := re.fullmatch(r"--timeout=(\d+)s", arg)) else arg for arg in args]
