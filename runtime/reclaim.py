"""Reclaiming what a container or a sandbox whose record was quarantined still holds on the machine.

The record is unreadable, so what it said is unknown; but everything pycrid makes for an object is
named after its 64-hex id, so the id is enough:

- its cgroups, under whatever parent and either driver's name (paths.leaf_names). Every process
  pycrid starts for a container, or for a pod (the pause), runs in one, so killing what is in them
  ends those processes too;
- its directories: a container's data under the root dir and its run dir (the rootfs mount point,
  the exit file), a pod's run dir (its pinned net/ipc/uts namespaces and /dev/shm: bind and tmpfs
  mounts), with whatever is mounted inside them.

A pod's network is not reclaimed here: NetworkPlugin.reconcile(live ids), called after this at
start, frees the veth, addresses and rules of every pod the store does not hold, and a quarantined
pod is not in it. Whatever else holds a pod (its containers, a per-pod helper process) is given to
the ``pod_hooks``, called with the pod's id before its own cgroups and mounts go.

Best effort, like every cleanup: a failure is logged and what was not reclaimed stays in place. A
directory with something still mounted inside is never removed (rmtree would empty the mount).
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import leaf_names
from runtime.errors import Internal, PycridError
from runtime.ids import check_id
from runtime.linux import constants as k
from runtime.linux import proc
from runtime.linux.syscalls import Syscalls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reclaimed:
    cgroups: tuple[str, ...]
    mounts: tuple[str, ...]
    dirs: tuple[str, ...]


def container_dirs(root_dir: str, state_dir: str, container_id: str) -> tuple[str, ...]:
    """Where ContainerManager keeps a container: its data (upper, work, volumes), then its run dir
    (rootfs, exit file), which goes last: the fork server may still be writing the exit file of
    the init just killed."""
    return (os.path.join(root_dir, "containers", container_id),
            os.path.join(state_dir, "containers", container_id))


def sandbox_dirs(state_dir: str, sandbox_id: str) -> tuple[str, ...]:
    """Where SandboxManager keeps a pod: its run dir, with the pinned namespaces and /dev/shm."""
    return (os.path.join(state_dir, "sandboxes", sandbox_id),)


def mounts_under(dirs: Iterable[str], mount_points: Sequence[str]) -> list[str]:
    """The mount points at or below any of ``dirs``, deepest first (the order to unmount them in),
    once per mount stacked there."""
    roots = [d.rstrip("/") for d in dirs]
    inside = [m for m in mount_points if any(m == d or m.startswith(d + "/") for d in roots)]
    return sorted(inside, key=lambda m: m.count("/"), reverse=True)


class Reclaimer:
    def __init__(self, root_dir: str, state_dir: str, cgroups: CgroupManager, syscalls: Syscalls, *,
                 mount_points: Callable[[], Sequence[str]] = proc.mount_points,
                 pod_hooks: Sequence[Callable[[str], None]] = ()) -> None:
        # Mount points are listed as the kernel resolved them: compare resolved dirs.
        self._root = os.path.realpath(root_dir)
        self._state = os.path.realpath(state_dir)
        self._cgroups = cgroups
        self._syscalls = syscalls
        self._mount_points = mount_points
        self._pod_hooks = pod_hooks

    def reclaim(self, container_ids: Iterable[str], sandbox_ids: Iterable[str]) -> None:
        """Containers first: a pod's things go after what ran in it."""
        for container_id in container_ids:
            self.container(container_id)
        for sandbox_id in sandbox_ids:
            self.sandbox(sandbox_id)

    def container(self, container_id: str) -> Reclaimed | None:
        check_id(container_id, "container")
        return self._reclaim("container", container_id, container_dirs(self._root, self._state, container_id))

    def sandbox(self, sandbox_id: str) -> Reclaimed | None:
        check_id(sandbox_id, "sandbox")
        for hook in self._pod_hooks:
            try:
                hook(sandbox_id)
            except Exception:  # one hook failing must not stop the rest of the cleanup
                log.exception("sandbox %s: reclaiming with %s failed", sandbox_id[:12],
                              getattr(hook, "__qualname__", hook))
        return self._reclaim("sandbox", sandbox_id, sandbox_dirs(self._state, sandbox_id))

    def _reclaim(self, kind: str, object_id: str, dirs: tuple[str, ...]) -> Reclaimed | None:
        """None if something could not be reclaimed (logged; the rest stays in place)."""
        try:
            cgroups = self._cgroups.find(leaf_names(object_id))
            for path in cgroups:  # all first: the processes of each die together
                self._cgroups.kill_all(path, signal.SIGKILL)
            for path in cgroups:
                self._cgroups.remove(path)  # waits while the killed exit
            mounts = mounts_under(dirs, self._mount_points())
            for mount in mounts:
                self._unmount(mount)
            still = mounts_under(dirs, self._mount_points())
            if still:
                raise Internal(f"still mounted after unmounting: {', '.join(still)}")
            removed = tuple(d for d in dirs if _remove_dir(d))
        except (PycridError, OSError) as e:
            log.error("%s %s: reclaiming what its quarantined record named failed, the rest is left in place: %s",
                      kind, object_id[:12], e)
            return None
        log.info("%s %s: reclaimed %d cgroups, %d mounts, %d dirs of its quarantined record", kind,
                 object_id[:12], len(cgroups), len(mounts), len(removed))
        return Reclaimed(tuple(cgroups), tuple(mounts), removed)

    def _unmount(self, path: str) -> None:
        try:
            self._syscalls.umount2(path, k.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted (any more): done
                raise Internal(f"unmounting {path}: {e}") from e


# A pod monitor writes a killed init's exit file into the container's run dir right after reaping
# it: a removal that meets that write is tried again, for as long as the agent waits for an exit file.
NOT_EMPTY_RETRY = 2.0


class _NotEmpty(Exception):
    pass


def _remove_dir(path: str, retry: float = NOT_EMPTY_RETRY) -> bool:
    """True if it was there."""
    if not os.path.lexists(path):
        return False

    def failed(_function: object, entry: str, exc_info: tuple[type[BaseException], BaseException, object]) -> None:
        error = exc_info[1]
        if isinstance(error, FileNotFoundError):  # gone already is what we want
            return
        if isinstance(error, OSError) and error.errno == errno.ENOTEMPTY:
            raise _NotEmpty(f"removing {path}: {entry}: {error}") from error
        raise Internal(f"removing {path}: {entry}: {error}") from error

    deadline = time.monotonic() + retry
    while True:
        try:
            shutil.rmtree(path, onerror=failed)
            return True
        except _NotEmpty as e:
            if time.monotonic() >= deadline:
                raise Internal(str(e)) from e
            time.sleep(0.05)
