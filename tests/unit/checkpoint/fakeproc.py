"""A /proc/<pid> of a running container init, as externals.inspect() reads it."""
from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = """\
248 105 0:71 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
249 248 0:73 / /proc rw,nosuid - proc proc rw
250 248 0:74 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
252 250 0:70 / /dev/shm rw,nosuid - tmpfs shm rw,size=65536k
265 248 254:0 /run/s/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
266 248 254:0 /srv/my\\040data /my\\040data rw,relatime - ext4 /dev/vda rw
268 249 0:78 / /proc/acpi ro,relatime - tmpfs tmpfs ro
269 249 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw
256 255 0:35 /pycrid/c1 /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu
"""


def fake_proc(base: Path, pid: int, stdio: tuple[str, str, str] = ("/dev/null", "pipe:[11]", "pipe:[12]")) -> str:
    proc = base / "proc"
    root = proc / str(pid)
    for d in ("ns", "fd", "fdinfo"):
        (root / d).mkdir(parents=True)
    (root / "ns" / "net").write_text("")
    (root / "mountinfo").write_text(MOUNTINFO)
    (base / "devnull").write_text("")
    for fd, target in enumerate(stdio):
        os.symlink(str(base / "devnull") if target == "/dev/null" else target, root / "fd" / str(fd))
        (root / "fdinfo" / str(fd)).write_text("pos:\t0\nflags:\t02\nmnt_id:\t24\nino:\t3\n")
    return str(proc)
