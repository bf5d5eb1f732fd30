"""Unix socket files at paths longer than sun_path allows (107 bytes).

A pod monitor's socket lives in the pod's run dir, whose path can exceed the limit (a deep state dir
plus a 64-hex id). Binding or connecting through ``/proc/self/fd/<dir fd>/<name>`` names the same
file in a few bytes.
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable

MAX_PATH = 107


def _at(path: str, call: Callable[[str], None]) -> None:
    """``call(name)`` with a name for ``path`` short enough for bind(2)/connect(2). (A plain
    function, not a context manager: a pod monitor binds through it, and contextlib's machinery
    would cost it pages it otherwise shares with the fork server.)"""
    if len(os.fsencode(path)) <= MAX_PATH:
        call(path)
        return
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        call(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
    finally:
        os.close(directory)


def connect(sock: socket.socket, path: str) -> None:
    _at(path, sock.connect)


def listen(path: str, backlog: int = 64) -> socket.socket:
    """A SEQPACKET listener at ``path`` (0600), made by listen_on."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        listen_on(sock, path, backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_on(sock: socket.socket, path: str, backlog: int = 64) -> None:
    """Binds ``sock`` at ``path`` (0600) and listens. A stale socket is replaced atomically by
    rename, so of two servers started at once exactly one is reachable."""
    tmp = f"{path}.{os.getpid()}"
    try:
        _unlink(tmp)
        _at(tmp, sock.bind)
        os.chmod(tmp, 0o600)
        sock.listen(backlog)
        os.rename(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_if_ours(path: str, inode: int) -> None:
    """Removes the socket file only if it is still the one we bound, not a successor's."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)
