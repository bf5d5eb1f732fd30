"""A stand-in for CRIU (the Criu protocol of criu.py) for tests without root or a kernel to dump."""
from __future__ import annotations

import os
from collections.abc import Sequence

from runtime.checkpoint.criu import DUMP_LOG
from runtime.errors import DeadlineExceeded, FailedPrecondition

IMAGES = ("inventory.img", "pstree.img", "core-1.img", "pages-1.img", "stats-dump")


class FakeCriu:
    """Records each run; a dump writes a few image files into its work directory, as CRIU would.

    ``fail``: the run fails as CRIU would, after writing part of its images and an error to its log.
    ``too_slow``: the run outlasts any timeout."""

    def __init__(self, fail: str = "", too_slow: bool = False) -> None:
        self.runs: list[tuple[list[str], str, float]] = []
        self.fail = fail
        self.too_slow = too_slow

    def run(self, args: Sequence[str], work_dir: str, timeout: float, pass_fds: Sequence[int] = ()) -> None:
        self.runs.append((list(args), work_dir, timeout))
        for name in IMAGES[:2] if self.fail else IMAGES:
            with open(os.path.join(work_dir, name), "wb") as f:
                f.write(b"\x00" * 64)
        with open(os.path.join(work_dir, DUMP_LOG), "w") as f:
            f.write(f"(00.000100) Error (criu/fake.c:1): {self.fail}\n" if self.fail else "(00.000100) done\n")
        if self.too_slow:
            raise DeadlineExceeded(f"criu {args[0]} did not finish within {timeout:.1f}s; stopped")
        if self.fail:
            raise FailedPrecondition(f"criu {args[0]} failed (exit 1): Error (criu/fake.c:1): {self.fail}")
