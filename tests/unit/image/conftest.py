from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from runtime.image.manager import ImageManager
from runtime.image.manifest import Platform
from runtime.image.testing import FakeRegistry, RecordingFileOps

AMD64 = Platform("linux", "amd64")


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def fileops() -> RecordingFileOps:
    return RecordingFileOps()


@pytest.fixture
def make_manager(tmp_path, registry: FakeRegistry, fileops: RecordingFileOps) -> Callable[..., ImageManager]:
    def make(**kw: object) -> ImageManager:
        kw.setdefault("platform", AMD64)
        kw.setdefault("fileops", fileops)
        return ImageManager(str(tmp_path / "images"), kw.pop("hosts", {}), registry, **kw)
    return make


@pytest.fixture
def manager(make_manager) -> ImageManager:
    return make_manager()


@pytest.fixture
def leftovers() -> Callable[[str], list[str]]:
    """Lists the snapshot and ingest directories of a root: empty after a failed pull."""
    def find(root: str) -> list[str]:
        return [os.path.join(sub, name) for sub in ("snapshots", "content/ingest")
                for name in os.listdir(os.path.join(root, sub))]
    return find
