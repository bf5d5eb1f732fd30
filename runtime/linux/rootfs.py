"""Resolving paths inside a container rootfs without ever leaving it.

An image controls its rootfs, symlinks included: ``/etc/passwd -> /etc/shadow`` on the host, a
VOLUME at ``/data -> ../../../../var/lib``, a mount target ``/proc -> /``. Following such links on
the host is CVE-2022-23648 / CVE-2024-9676. ``resolve_in_root`` walks the path one component at a
time as the kernel would if ``root`` were "/": absolute link targets restart at ``root`` and ``..``
stops at it (the semantics of openat2's RESOLVE_IN_ROOT).

It is a check-then-use walk: it is safe against a rootfs that does not change while we use it (an
unpacked image before the container starts), not against a container racing us from inside.
``open_in_root`` has the kernel do the same walk (openat2 RESOLVE_IN_ROOT) and hands back an fd:
what is then read or mounted is what was resolved, whatever the path names by then.
"""

import os
import stat

from runtime.errors import InvalidArgument
from runtime.linux import constants as k
from runtime.linux.syscalls import Syscalls

MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
_RACED_RETRIES = 8


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


def resolve_in_root(root: str, path: str) -> str:
    """The host path that ``path`` (as seen by a process whose root is ``root``) refers to.

    Components that do not exist (yet) are kept literally, so the result can name a mount target
    or file still to be created. Raises InvalidArgument on a symlink loop."""
    root = os.path.abspath(root)
    pending = list(reversed(path.split("/")))
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            mode = os.lstat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        except OSError as e:
            raise InvalidArgument(f"resolving {path!r} in {root}: {e}") from e
        if not stat.S_ISLNK(mode):
            resolved.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise InvalidArgument(f"resolving {path!r} in {root}: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed(target.split("/")))
    return os.path.join(root, *resolved)
