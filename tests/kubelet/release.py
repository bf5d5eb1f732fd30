"""Where hack/kube/build.sh puts the Kubernetes release the kubelet tests run."""
from __future__ import annotations

import os
from pathlib import Path

VERSION = "v1.36.3"
BIN = Path(os.environ.get("PYCRID_CACHE", "/var/cache/pycrid-dev")) / "kube" / VERSION / "bin"


def binary(name: str) -> Path:
    """The path of a built binary; a missing one fails the test (CI skips nothing)."""
    path = BIN / name
    assert os.access(path, os.X_OK), f"{path} is missing: hack/kube/build.sh (run by hack/install.sh) builds it"
    return path
