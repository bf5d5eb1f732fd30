"""Reading a small file that the image provides (its /etc/passwd, /etc/group) as the hostile input
it is.

The image decides what sits at that path. A plain open() of a FIFO blocks until a writer comes (the
container never starts); a device would be opened and read; a sparse file of terabytes is cheap to
ship; a symlink may point anywhere. So the file is

- resolved by the kernel inside the root (``open_in_root``): symlinks are followed, as runc and
  containerd do for /etc/passwd, but an absolute target or ".." never leaves the root, and /proc
  magic links are refused;
- opened so that the open itself cannot block or take a controlling terminal (O_NONBLOCK,
  O_NOCTTY), then read only if it is a regular file no bigger than the limit;
- read with a bound, for a file that grows meanwhile.
"""
from __future__ import annotations

import errno
import os
import stat

from runtime.errors import InvalidArgument
from runtime.linux.rootfs import closing_fd, open_in_root, opened_root
from runtime.linux.syscalls import Syscalls

ACCOUNTS_LIMIT = 1 << 20  # /etc/passwd and /etc/group: the largest real ones are a few KiB
_MISSING = (errno.ENOENT, errno.ENOTDIR)
# Open errors only the image can cause: a symlink loop or magic link, a socket, a device without a driver.
_REFUSED = (errno.ELOOP, errno.ENXIO, errno.ENODEV)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_image_file(syscalls: Syscalls, root: str, path: str, limit: int) -> bytes | None:
    """The contents of ``path`` inside ``root``; None if there is no such file."""
    try:
        with opened_root(root) as root_fd:
            fd = open_in_root(syscalls, root_fd, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno in _MISSING:
            return None
        if e.errno in _REFUSED:
            raise InvalidArgument(f"{path} in the container cannot be read: {e.strerror}") from e
        raise
    with closing_fd(fd):
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "of another type")
            raise InvalidArgument(f"{path} in the container is {kind}, not a regular file")
        if info.st_size > limit:
            raise InvalidArgument(f"{path} in the container is {info.st_size} bytes, more than {limit}")
        data = _read_at_most(fd, limit + 1)
    if len(data) > limit:
        raise InvalidArgument(f"{path} in the container grew past {limit} bytes while read")
    return data


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
