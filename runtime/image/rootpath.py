"""Resolving layer entry paths inside a snapshot root without ever following a link out of it.

Entry names are cleaned lexically: a leading ``/`` is relative to the root (containerd does the
same), ``.`` and empty components vanish, and ``..`` pops a component; a ``..`` that would leave
the root is refused. Directories are then opened one component at a time from the root's fd with
O_NOFOLLOW|O_DIRECTORY, so a symlink (or a file) where a parent directory should be is refused
instead of followed (CVE-2021-32760, CVE-2024-5154).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from runtime.errors import InvalidArgument

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_path(name: str, what: str) -> tuple[str, ...]:
    """The components of ``name`` relative to the root; InvalidArgument if it escapes."""
    if "\0" in name:
        raise InvalidArgument(f"{what}: path contains NUL")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidArgument(f"{what}: path escapes the layer root")
            parts.pop()
            continue
        parts.append(part)
    return tuple(parts)


def open_root(path: str) -> int:
    return os.open(path, _DIR_FLAGS)


def open_dir(root_fd: int, parts: Sequence[str], create: bool, what: str) -> int:
    """An fd of the directory ``parts`` below the root (a new one, the root's too); missing
    directories are made (0755) when ``create``."""
    if not parts:
        return os.dup(root_fd)
    fd = root_fd  # never closed here: the caller's
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise InvalidArgument(f"{what}: {'/'.join(parts)} does not exist in the layer") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.chmod(child, 0o755)  # the umask must not decide an image's permissions
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidArgument(f"{what}: parent {part!r} is a symlink or not a directory; "
                                          "refusing to write through it") from e
                raise
            if fd != root_fd:
                os.close(fd)
            fd = child
        return fd
    except BaseException:
        if fd != root_fd:
            os.close(fd)
        raise
