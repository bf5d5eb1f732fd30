"""What the running kernel can do, for tests whose expectation depends on it."""
from __future__ import annotations

import os

RELEASE = tuple(int(part) for part in os.uname().release.split(".")[:2])
# tmpfs takes id-mapped mounts since Linux 6.3; the v2 guest's Debian 12 kernel (6.1) refuses them.
TMPFS_IDMAP = RELEASE >= (6, 3)
