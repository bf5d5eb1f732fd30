"""Which code a helper process runs: the build id it reports in its handshake.

A helper (the fork server, a pod monitor) outlives the agent that started it; after pycrid is
upgraded, a new agent meets helpers that still run the old code. The build id is a digest of the
runtime's sources as they were when the helper imported them, so any change (a fixed init or unpack
path, a newer protocol) is seen and the helper is asked to re-exec into the new code.
"""
from __future__ import annotations

import hashlib
import os
from functools import cache

import runtime
from runtime.process.protocol import PROTOCOL

_PACKAGE = os.path.dirname(os.path.abspath(runtime.__file__))


@cache
def build_id() -> str:
    digest = hashlib.sha256(f"protocol {PROTOCOL}\n".encode())
    for directory, dirnames, filenames in sorted(os.walk(_PACKAGE)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(f for f in filenames if f.endswith(".py")):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, _PACKAGE).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


def source_root() -> str:
    """The directory to put on PYTHONPATH for a helper to import this very code."""
    return os.path.dirname(_PACKAGE)
