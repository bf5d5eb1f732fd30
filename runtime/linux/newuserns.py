"""A child process in a new user namespace whose id maps its parent writes.

Only a process privileged in the *parent* user namespace may write arbitrary maps, so a process
cannot give itself its pod's: the child unshares CLONE_NEWUSER and waits; the parent writes
/proc/<child>/gid_map and uid_map; the child becomes the namespace's root (keeping the full
capabilities the namespace gives its creator), runs ``inside`` there (to make the namespaces it is
to own: net, IPC, UTS) and then waits again, while the parent uses or pins its namespaces by
/proc/<child>/ns/*. Leaving the block lets it go and reaps it. Its namespaces outlive it only
through what the parent did with them.

Call it from a single-threaded process (it forks).
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls

_UNSHARED, _MAPPED, _READY = b"unshared", b"mapped", b"ready"


def enter_user_namespace(fd: int, syscalls: Syscalls) -> None:
    """Joins the user namespace ``fd`` as its root (uid and gid 0, no groups), with the full
    capabilities joining gives; whoever joins drops what it must not keep afterwards."""
    syscalls.setns(fd, k.CLONE_NEWUSER)
    _become_root(syscalls)


def _become_root(syscalls: Syscalls) -> None:
    # Our host ids are not mapped in the namespace: as they were, what we create would belong to
    # the host's root. As its root, keeping the capabilities (the kernel keeps them when ids move
    # to the namespace's root), and without the host's groups.
    syscalls.setgroups(())
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


@contextmanager
def user_namespace_child(uid_map: str, gid_map: str, inside: Callable[[], None],
                         syscalls: Syscalls) -> Iterator[int]:
    """The child's pid, for the block to reach its namespaces by /proc/<pid>/ns/*."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        ours.close()
        _child(theirs, inside, syscalls)
    theirs.close()
    try:
        _expect(ours, _UNSHARED, pid)
        for name, text in (("gid_map", gid_map), ("uid_map", uid_map)):
            try:
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(text)
            except OSError as e:
                raise Internal(f"writing {name} {text.strip()!r} of user namespace child {pid}: {e}") from e
        ours.send(_MAPPED)
        _expect(ours, _READY, pid)
        yield pid
    finally:
        ours.close()  # its cue to exit
        os.waitpid(pid, 0)


def _expect(sync: socket.socket, what: bytes, pid: int) -> None:
    got = sync.recv(4096)
    if got != what:
        why = got.decode(errors="replace") or "it exited"
        raise Internal(f"user namespace child {pid}: {why}")


def _child(sync: socket.socket, inside: Callable[[], None], syscalls: Syscalls) -> NoReturn:
    code = 1
    try:
        syscalls.unshare(k.CLONE_NEWUSER)
        sync.send(_UNSHARED)
        if sync.recv(64) == _MAPPED:
            _become_root(syscalls)
            inside()
            sync.send(_READY)
            sync.recv(1)  # EOF: the parent is done with our namespaces
            code = 0
    except BaseException as e:  # noqa: BLE001 - the parent reports it
        try:
            sync.send(f"{type(e).__name__}: {e}".encode()[:4096])
        except OSError:
            pass
    finally:
        os._exit(code)
