"""How much longer tests wait for things to start where everything runs slower: hack/vm/run.sh
sets PYCRID_TEST_TIMEOUT_SCALE in an emulated guest, where Python runs some 15 times slower and a
fork server or an agent takes most of a minute to import pycrid."""
from __future__ import annotations

import os

TIMEOUT_SCALE = float(os.environ.get("PYCRID_TEST_TIMEOUT_SCALE", "1"))
