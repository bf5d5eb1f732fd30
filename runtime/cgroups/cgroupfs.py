"""Thin file operations on one cgroup directory tree, shared by the v1 and v2 drivers.

Every OSError is wrapped with what was attempted on which path. The same code runs on fake trees
in unit tests (plain directories and files under tmp_path), so writes create missing files and
removal copes with directories that hold plain files; on a real cgroupfs neither case arises.
"""

import errno
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Protocol

from runtime.cgroups.paths import normalize_path
from runtime.errors import FailedPrecondition, Internal, InvalidArgument, PycridError
from runtime.linux.seqfile import read_whole

log = logging.getLogger(__name__)

# Errors that mean "this file is not there (any more)": a vanished cgroup, a controller that is
# not enabled, or PSI compiled in but switched off (read gives EOPNOTSUPP).
_ABSENT = (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP)
REMOVE_TIMEOUT_S = 1.0


def cgroup_dir(hierarchy_root: str, path: str, *, allow_root: bool = False) -> str:
    """The directory of cgroup ``path`` inside a hierarchy mounted at ``hierarchy_root``."""
    path = normalize_path(path)
    if path == "/" and not allow_root:
        raise FailedPrecondition(f"cgroup {hierarchy_root}: refusing to act on the root cgroup")
    return os.path.join(hierarchy_root, path.lstrip("/"))


def open_optional(path: str) -> int | None:
    """A read-only descriptor of the file, or None when it does not exist."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise Internal(f"cgroup file {path}: reading: {e}") from e


def read_open(path: str, fd: int) -> str | None:
    """The whole file behind ``fd`` (``path`` is for errors), or None when its cgroup went away."""
    try:
        return read_whole(fd).decode()
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise Internal(f"cgroup file {path}: reading: {e}") from e


def read_optional(path: str) -> str | None:
    """The file's text, or None when it does not exist. Plain os.open/os.pread: a scrape reads a
    dozen files per container, and a Python file object costs more than the syscalls do."""
    fd = open_optional(path)
    if fd is None:
        return None
    try:
        return read_open(path, fd)
    finally:
        os.close(fd)


class StatFiles(Protocol):
    """How stats() reads a cgroup's stat files, all in one call: opened each time (EachTime) or
    kept open (heldfiles.HeldFiles)."""

    def read_many(self, paths: Sequence[str]) -> list[str | None]: ...


class EachTime:
    def read_many(self, paths: Sequence[str]) -> list[str | None]:
        return [read_optional(p) for p in paths]


EACH_TIME = EachTime()


def write(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, name)
    try:
        # O_CREAT only matters on fake trees; cgroupfs files always exist (or cannot be created).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        # The values come from the request: the kernel refusing one (cpus the node lacks, a
        # limit out of range) is the caller's error, not ours; EBUSY is the cgroup's state
        # refusing it (a v1 memory limit below what is in use).
        kind = (InvalidArgument if e.errno in (errno.EINVAL, errno.ERANGE)
                else FailedPrecondition if e.errno == errno.EBUSY else Internal)
        raise kind(f"cgroup {directory}: writing {name}={value!r}: {e}") from e


def make_dir(path: str) -> bool:
    """mkdir one level; True if this call created it."""
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise Internal(f"cgroup {path}: mkdir: {e}") from e


def subtree_dirs(path: str) -> Iterator[str]:
    """``path`` and every cgroup below it, deepest first (the order rmdir needs)."""
    if not os.path.isdir(path):
        return
    for parent, dirs, _files in os.walk(path, topdown=False):
        for d in dirs:
            yield os.path.join(parent, d)
    yield path


def find_named(hierarchy_root: str, names: Collection[str]) -> list[str]:
    """Paths (as "/a/b", relative to the hierarchy) of the cgroups whose directory name is one of
    ``names``; below a match is not searched, since whatever is there goes with it."""
    found = []
    for parent, dirs, _files in os.walk(hierarchy_root):
        matched = [d for d in dirs if d in names]
        found += ["/" + os.path.relpath(os.path.join(parent, d), hierarchy_root) for d in matched]
        dirs[:] = [d for d in dirs if d not in names]
    return found


def remove_tree(path: str, timeout_s: float = REMOVE_TIMEOUT_S) -> None:
    """rmdir ``path`` and its descendants leaf-first. Missing is fine (idempotent).

    EBUSY means processes are still leaving (a killed task exits asynchronously), so retry until
    ``timeout_s``. ENOTEMPTY never comes from cgroupfs (control files do not count; child cgroups
    give EBUSY), only from a plain directory standing in for one: drop its files and retry.
    """
    deadline = time.monotonic() + timeout_s
    for d in subtree_dirs(path):
        delay = 0.005
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == errno.ENOTEMPTY:
                    _remove_plain_files(d)
                    continue
                if e.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.1)
                    continue
                raise Internal(f"cgroup {d}: rmdir: {e}") from e


def remove_tree_best_effort(path: str) -> None:
    """Rollback after a failed create: the original error matters, this one is only logged."""
    try:
        remove_tree(path)
    except PycridError as e:
        log.warning("cgroup %s: rollback after a failed create: %s", path, e)


def _remove_plain_files(directory: str) -> None:
    with os.scandir(directory) as entries:
        files = [e.path for e in entries if e.is_file(follow_symlinks=False)]
    if not files:
        raise Internal(f"cgroup {directory}: rmdir: not empty")
    for f in files:
        try:
            os.unlink(f)
        except OSError as e:
            raise Internal(f"cgroup {directory}: removing {f}: {e}") from e


def parse_pids(text: str) -> list[int]:
    """cgroup.procs: one pid per line."""
    return [int(line) for line in text.split()]


def subtree_pids(path: str, skip: Collection[str] = ()) -> list[int]:
    """Sorted pids in cgroup ``path`` and all its descendants except the subtrees ``skip``
    (directories whose pids the caller has); [] when it does not exist. cgroup.procs is opened
    on each read (heldfiles.py says why).

    A directory's link count is 2 plus its subdirectories (cgroupfs keeps it so too): a leaf, the
    usual container cgroup, or a pod cgroup whose only children are skipped ones, costs no listing."""
    pids: set[int] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        text = read_optional(os.path.join(d, "cgroup.procs"))
        if text:
            pids.update(parse_pids(text))
        try:
            links = os.stat(d).st_nlink  # 1 on filesystems that do not count (btrfs): list those
            skipped = [s for s in skip if os.path.dirname(s) == d]
            if links == 2 + len(skipped) and all(os.path.isdir(s) for s in skipped):
                continue
            with os.scandir(d) as entries:
                stack.extend(e.path for e in entries
                             if e.is_dir(follow_symlinks=False) and e.path not in skip)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(pids)


def signal_pids(pids: list[int], sig: int, kill: Callable[[int, int], None]) -> None:
    """Signal each pid; one that already exited (ESRCH) is what we wanted anyway."""
    for pid in pids:
        try:
            kill(pid, sig)
        except ProcessLookupError:
            pass
        except OSError as e:
            raise Internal(f"signalling pid {pid} with {sig}: {e}") from e
