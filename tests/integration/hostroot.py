"""A tiny rootfs made of the host's own binaries and their libraries, for runtime tests that should
not depend on the image pipeline."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

TOOLS = ("sh", "cat", "id", "hostname", "ls", "sleep", "echo", "env", "true", "false", "mount", "head",
         "grep", "stat", "readlink", "kill", "tty", "stty", "mknod")


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return set(re.findall(r"(/\S+)", out))


def make(root: Path) -> Path:
    """Builds the rootfs once per directory; returns it."""
    if (root / "bin" / "sh").exists():
        return root
    files: set[str] = set()
    for tool in TOOLS:
        path = shutil.which(tool)
        assert path, f"host tool {tool} missing"
        real = os.path.realpath(path)
        files.add(real)
        files |= _libraries(real)
        (root / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, root / "bin" / tool)
    for f in files:
        target = root / f.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (root / d).mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nguest:x:1234:1234::/home/guest:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nguest:x:1234:\nextra:x:5000:guest\n")
    return root
