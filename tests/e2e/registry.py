"""A throwaway local registry (hack/registry.sh) holding the test images (hack/images.sh), for
pycrid to mirror the public hosts to."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.daemon import REPO
from tests.ports import free_port


@contextmanager
def local_registry(base: Path, refs: tuple[str, ...] = ()) -> Iterator[str]:
    """Yields the registry's host:port with `refs` pushed (every test image when empty)."""
    port = free_port()
    hack = REPO / "hack"
    subprocess.run([hack / "registry.sh", "start", base, str(port)], check=True)
    try:
        subprocess.run([hack / "images.sh", "push", f"127.0.0.1:{port}", *refs], check=True)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([hack / "registry.sh", "stop", base], check=True)
