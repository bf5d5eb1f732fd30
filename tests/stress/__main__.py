"""python -m tests.stress: a chaos run by hand (hack/chaos.sh wraps it). Prints the summary; exits
1 on any violation or leak, 2 on bad arguments."""
from __future__ import annotations

import argparse
import faulthandler
import shutil
import sys
import tempfile
from pathlib import Path

from tests.stress.chaos import TARGETS
from tests.stress.driver import STRAGGLER_SECONDS, Options, run
from tests.stress.sequence import HOSTILE_SHARE

CLEAN_UP_SECONDS = 300  # invariants, removal of every pod, leak checks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack/chaos.sh", description=__doc__)
    p.add_argument("--calls", type=int, default=10000, help="CRI calls in all (default 10000)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kills", type=int, help="kills in the run (default: one per 500 calls, at least 2)")
    p.add_argument("--kill", default="agent",
                   help=f"comma-separated kill targets from {','.join(TARGETS)}; '' for none (default agent)")
    p.add_argument("--hostile", type=float, default=HOSTILE_SHARE,
                   help=f"share of calls with invalid or hostile arguments (default {HOSTILE_SHARE})")
    p.add_argument("--helper-recovery", type=float, default=5.0,
                   help="seconds a killed helper's dependants may answer UNAVAILABLE (default 5)")
    p.add_argument("--timeout", type=float, default=1800.0, help="no new calls after this many seconds")
    p.add_argument("--base", type=Path, help="work dir (default: a new one under /tmp, removed on PASS)")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.kill.split(",") if t)
    if set(targets) - set(TARGETS):
        p.error(f"--kill: unknown target in {a.kill!r}; choose from {','.join(TARGETS)}")
    base = a.base or Path(tempfile.mkdtemp(prefix="pycrid-chaos-"))
    # The last guard against a hang anywhere: dump every thread's stack and exit.
    faulthandler.dump_traceback_later(a.timeout + 2 * STRAGGLER_SECONDS + CLEAN_UP_SECONDS, exit=True)
    summary = run(Options(base=base, calls=a.calls, threads=a.threads, seed=a.seed,
                          kills=a.kills if a.kills is not None else max(2, a.calls // 500), targets=targets,
                          hostile_share=a.hostile, helper_recovery=a.helper_recovery, timeout=a.timeout))
    faulthandler.cancel_dump_traceback_later()
    print(summary.text())
    if summary.ok() and a.base is None:
        shutil.rmtree(base, ignore_errors=True)
    else:
        (base / "violations.txt").write_text(summary.violations_text())
        print(f"every violation: {base / 'violations.txt'}; pycrid's log: {base / 'pycrid' / 'pycrid.log'}")
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
