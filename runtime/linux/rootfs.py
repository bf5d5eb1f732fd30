"""Opening paths inside a container rootfs without ever leaving it.

An image controls its rootfs, symlinks included: ``/etc/passwd -> /etc/shadow`` on the host, a
VOLUME at ``/data -> ../../../../var/lib``, a mount target ``/proc -> /``. Following such links on
the host is CVE-2022-23648 / CVE-2024-9676. Resolving a path and then using it by name is
CVE-2021-30465: a container sharing a volume swaps a component for a symlink in between.

So a path is resolved once, by the kernel, as if the rootfs were "/" (openat2 RESOLVE_IN_ROOT:
absolute link targets restart at the root, ".." stops at it), into an fd. What is then read,
created or mounted is reached through that fd (``*at`` calls, or ``fd_path`` for mount(2)), never
through the path again. A racing rename can at most move us elsewhere inside the root.
"""

import errno
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from runtime.errors import Internal, InvalidArgument
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls

_RACED_RETRIES = 8
# Each step creates one component or follows one dangling link; the kernel bounds each walk itself.
_MAX_STEPS = 256


def fd_path(fd: int) -> str:
    """The path of what ``fd`` was opened on, for calls that take a path: the /proc magic link
    jumps to that very file, whatever its name now resolves to."""
    return f"/proc/self/fd/{fd}"


@contextmanager
def closing_fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def opened_root(rootfs: str) -> AbstractContextManager[int]:
    """A directory fd of ``rootfs`` to resolve in, closed on leaving the block."""
    return closing_fd(os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))


def open_in_root(syscalls: Syscalls, root_fd: int, path: str, flags: int) -> int:
    """An fd (close-on-exec) for ``path`` as seen by a process whose root is ``root_fd``.

    Symlinks are followed, never out of the root; /proc magic links are refused (ELOOP): they jump
    wherever their target is. The kernel answers EAGAIN when a rename elsewhere raced the walk of a
    "..": it is tried again a few times."""
    def attempt() -> int:
        return syscalls.openat2(root_fd, path or "/", flags | os.O_CLOEXEC, 0,
                                k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS)

    for _ in range(_RACED_RETRIES - 1):
        try:
            return attempt()
        except BlockingIOError:
            continue
    return attempt()


def reopen_in_root(syscalls: Syscalls, root_fd: int, fd: int) -> int:
    """A new O_PATH fd for the path ``fd`` was opened on, resolved again in the root: after a mount
    on ``fd``, ``fd`` still names the directory underneath while the path reaches the new mount.
    The new fd must name the same place, as runc checks: were the path swapped in between, this
    fails rather than have us change another mount."""
    where = os.readlink(fd_path(fd))
    relative = os.path.relpath(where, os.readlink(fd_path(root_fd)))
    if relative == ".." or relative.startswith("../"):
        raise Internal(f"{where} is outside the container's root")
    reopened = open_in_root(syscalls, root_fd, relative, os.O_PATH)
    if os.readlink(fd_path(reopened)) != where:
        os.close(reopened)
        raise Internal(f"{where} was moved while in use")
    return reopened


def make_in_root(syscalls: Syscalls, root_fd: int, path: str, file: bool = False) -> int:
    """An O_PATH fd for ``path`` in the root, creating what is missing, as a mount target needs:
    directories on the way, and at the end a directory or (``file``) an empty file. A dangling
    symlink on the way is followed: its target is created, inside the root. Raises
    InvalidArgument for a symlink loop."""
    for _ in range(_MAX_STEPS):
        try:
            return open_in_root(syscalls, root_fd, path, os.O_PATH)
        except FileNotFoundError:
            path = _create_first_missing(syscalls, root_fd, path, file)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise InvalidArgument(f"resolving {path!r} in the container's root: {e.strerror}") from e
    raise InvalidArgument(f"resolving {path!r} in the container's root: more than {_MAX_STEPS} steps")


def _create_first_missing(syscalls: Syscalls, root_fd: int, path: str, file: bool) -> str:
    """Creates the first missing component of ``path`` in its parent's fd; returns the path to
    open next: ``path`` again, or, where that component is a dangling symlink, the path through
    the link's target."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    parent = root_fd
    try:
        for i, name in enumerate(parts):
            try:
                fd = open_in_root(syscalls, root_fd, "/".join(parts[: i + 1]), os.O_PATH)
            except FileNotFoundError:
                return _create(parent, name, file and i == len(parts) - 1, path, parts[:i], parts[i + 1:])
            if parent != root_fd:
                os.close(parent)
            parent = fd
        return path  # nothing is missing any more: created meanwhile
    finally:
        if parent != root_fd:
            os.close(parent)


def _create(parent: int, name: str, file: bool, path: str, before: list[str], after: list[str]) -> str:
    try:
        if file:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=parent))
        else:
            os.mkdir(name, 0o755, dir_fd=parent)
        return path
    except FileExistsError:
        pass
    try:
        target = os.readlink(name, dir_fd=parent)
    except OSError as e:
        if e.errno == errno.EINVAL:  # not a symlink: it appeared meanwhile
            return path
        raise
    return "/".join(["", *([] if target.startswith("/") else before), target, *after])
