"""The images the container managers' tests create containers of, pulled from a fake registry."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.image import testimages as ti
from runtime.image.manager import ImageManager
from runtime.image.manifest import Platform
from runtime.image.testing import FakeRegistry, RecordingFileOps

HUB = "registry-1.docker.io"


@pytest.fixture
def images(tmp_path: Path) -> ImageManager:
    registry = FakeRegistry()
    base = ti.layer_tar([ti.directory("bin"), ti.file("bin/sh", b"#!", mode=0o755)])
    registry.push(HUB, "library/trapper", ti.build_image([base], config={"Cmd": ["sh"], "StopSignal": "usr1"}), "1")
    registry.push(HUB, "library/plain", ti.build_image([base], config={"Cmd": ["sh"]}), "1")
    registry.push(HUB, "library/odd", ti.build_image([base], config={"Cmd": ["sh"], "StopSignal": "SIGFOO"}), "1")
    manager = ImageManager(str(tmp_path / "images"), {}, registry, platform=Platform("linux", "amd64"),
                           fileops=RecordingFileOps())
    manager.pull("trapper:1")
    manager.pull("plain:1")
    manager.pull("odd:1")
    return manager
