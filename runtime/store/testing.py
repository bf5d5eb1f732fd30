"""A disk whose fsyncs fail, for the tests of the set-ups that wait for their first record's."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runtime.errors import Internal
from runtime.store import checkpoint


@contextlib.contextmanager
def failing_syncs(error: str = "[Errno 5] Input/output error") -> Iterator[None]:
    """Within it, a record written by ``save_then_sync`` is in place but its fsyncs fail."""
    real = checkpoint.save_then_sync

    def failing(path: Path, record: dict[str, Any]) -> Callable[[], None]:
        real(path, record)

        def fail() -> None:
            raise Internal(f"syncing {path}: {error}")
        return fail

    checkpoint.save_then_sync = failing
    try:
        yield
    finally:
        checkpoint.save_then_sync = real
