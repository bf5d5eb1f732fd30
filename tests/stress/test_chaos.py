"""The CI run of the chaos harness: a fixed seed, 8 threads, ~600 CRI calls with valid and hostile
arguments and a few SIGKILLs, then zero violations and zero leaks. hack/chaos.sh runs the same
harness by hand with a big budget."""
from __future__ import annotations

import faulthandler
import os
import shutil
from pathlib import Path

import pytest

from tests.stress.driver import Options, run

KILL_TARGETS = ("agent", "forkserver", "monitor")


@pytest.mark.e2e
def test_random_concurrent_cri_calls_and_kills_break_nothing(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the chaos run needs root: run it through hack/test.sh"
    assert shutil.which("crictl"), "crictl is not on PATH: hack/install.sh puts it in $PYCRID_CACHE/bin"
    faulthandler.dump_traceback_later(600, exit=True)  # the harness must never hang the suite
    try:
        summary = run(Options(base=tmp_path, calls=600, threads=8, seed=20261204, kills=4,
                              targets=KILL_TARGETS, timeout=120.0))
    finally:
        faulthandler.cancel_dump_traceback_later()
    print(summary.text())
    assert summary.tally.calls() == 600 and sum(summary.kills.values()) == 4, summary.text()
    assert summary.ok(), summary.text()
