"""The image domain: references, registry pulls, content store, layer unpacking, snapshots, records.

The CRI ImageService talks to ``ImageManager`` only; see manager.py. The names below are loaded
on first use: a layer-unpacking child of the fork server imports runtime.image.unpack alone, and
the manager would bring the whole pull path (HTTP, TLS, thread pools) into every such process.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.image.auth import Credentials
    from runtime.image.config import ImageConfig
    from runtime.image.hosts import RegistryHost
    from runtime.image.manager import FsUsage, GcResult, ImageManager
    from runtime.image.store import Image

__all__ = ["Credentials", "FsUsage", "GcResult", "Image", "ImageConfig", "ImageManager", "RegistryHost"]
_WHERE = {"Credentials": "auth", "ImageConfig": "config", "RegistryHost": "hosts", "FsUsage": "manager",
          "GcResult": "manager", "ImageManager": "manager", "Image": "store"}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"runtime.image.{_WHERE[name]}"), name)
