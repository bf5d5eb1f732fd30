"""Unix socket files at paths longer than sun_path allows (107 bytes).

A pod monitor's socket lives in the pod's run dir, whose path can exceed the limit (a deep state dir
plus a 64-hex id). Binding or connecting through ``/proc/self/fd/<dir fd>/<name>`` names the same
file in a few bytes.
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

MAX_PATH = 107


@contextlib.contextmanager
def addressable(path: str) -> Iterator[str]:
    """A name for ``path`` short enough for bind(2)/connect(2), valid inside the block."""
    if len(os.fsencode(path)) <= MAX_PATH:
        yield path
        return
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{os.path.basename(path)}"
    finally:
        os.close(directory)


def connect(sock: socket.socket, path: str) -> None:
    with addressable(path) as name:
        sock.connect(name)


def listen(path: str, backlog: int = 64) -> socket.socket:
    """A SEQPACKET listener at ``path`` (0600). A stale socket is replaced atomically by rename,
    so of two servers started at once exactly one is reachable."""
    tmp = f"{path}.{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        with addressable(tmp) as name:
            sock.bind(name)
        os.chmod(tmp, 0o600)
        sock.listen(backlog)
        os.rename(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return sock


def remove_if_ours(path: str, inode: int) -> None:
    """Removes the socket file only if it is still the one we bound, not a successor's."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)
