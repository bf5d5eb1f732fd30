"""The seam between the runtime and the kernel: a Protocol, and its one real implementation.

Code that decides (mount plans, capability sets) calls the kernel only through ``Syscalls`` so that
unit tests can swap in ``runtime.linux.testing.FakeSyscalls``. Every failure is an ``OSError`` whose
errno is the kernel's and whose message names the call and the path or object it was about.
"""

import ctypes
import errno
import functools
import os
from collections.abc import Sequence
from typing import Protocol

from runtime.linux import constants as k


class Syscalls(Protocol):
    def unshare(self, flags: int) -> None: ...

    def setns(self, fd: int, nstype: int) -> None: ...

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
    ) -> None: ...

    def umount2(self, target: str, flags: int = 0) -> None: ...

    def mount_setattr(
        self, path: str, attr_set: int, attr_clr: int = 0, propagation: int = 0, recursive: bool = True
    ) -> None: ...

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        """An fd of the mount at ``path`` (from ``dirfd``); with OPEN_TREE_CLONE, of a detached copy."""
        ...

    def mount_setattr_idmap(self, tree_fd: int, userns_fd: int, recursive: bool) -> None:
        """Id-maps the (detached) mount ``tree_fd`` through the user namespace ``userns_fd``."""
        ...

    def move_mount(self, from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None: ...

    def pivot_root(self, new_root: str, put_old: str) -> None: ...

    def sethostname(self, name: str) -> None: ...

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int: ...

    def capget(self) -> tuple[int, int, int]:
        """(effective, permitted, inheritable) of this process as 64-bit masks."""
        ...

    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...

    def setgroups(self, gids: Sequence[int]) -> None: ...

    def mknod(self, path: str, mode: int, device: int) -> None: ...

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        """A new fd for ``path`` from ``dirfd``, resolved as ``resolve`` (RESOLVE_*) allows."""
        ...

    def pidfd_open(self, pid: int) -> int: ...

    def wait_pidfd(self, pidfd: int, options: int = os.WEXITED) -> os.waitid_result | None:
        """waitid(P_PIDFD); None when WNOHANG was given and the process has not changed state."""
        ...

    def close_range(self, first: int, last: int = k.CLOSE_RANGE_MAX_FD, flags: int = 0) -> None: ...


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


# Once per process: loading builds ctypes objects, and a pod monitor (a fork of the fork server)
# then shares the fork server's instead of dirtying ~0.1 MiB of copy-on-write pages with its own.
@functools.cache
def _load_libc() -> ctypes.CDLL:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    # A pod monitor calls these itself (its pause's PID namespace: runtime/process/pidnsfork.py).
    libc.unshare.argtypes = [ctypes.c_int]
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def _fs(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


class LinuxSyscalls:
    """The kernel, through glibc (ctypes) where Python 3.11 has no binding."""

    def __init__(self, machine: str | None = None) -> None:
        self._libc = _load_libc()
        self._pivot_root_nr = k.pivot_root_number(machine)

    def _check(self, ret: int, what: str) -> int:
        if ret == -1:
            raise _fail(what)
        return ret

    # A pod monitor calls these two for every fork into a PID namespace: plain ints (argtypes
    # convert them) and the error's text only on failure touch fewer of the pages it shares.
    def unshare(self, flags: int) -> None:
        if self._libc.unshare(flags) == -1:
            raise _fail(f"unshare(flags={flags:#x})")

    def setns(self, fd: int, nstype: int) -> None:
        if self._libc.setns(fd, nstype) == -1:
            raise _fail(f"setns(fd {fd}, nstype={nstype:#x})")

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
    ) -> None:
        ret = self._libc.mount(_fs(source), _fs(target), _fs(fstype), flags, _fs(data))
        self._check(ret, f"mount {source!r} on {target} (type {fstype!r}, flags={flags:#x}, data={data!r})")

    def umount2(self, target: str, flags: int = 0) -> None:
        self._check(self._libc.umount2(_fs(target), flags), f"umount2 {target} (flags={flags:#x})")

    def mount_setattr(
        self, path: str, attr_set: int, attr_clr: int = 0, propagation: int = 0, recursive: bool = True
    ) -> None:
        attr = _MountAttr(attr_set, attr_clr, propagation, 0)
        ret = self._libc.syscall(
            ctypes.c_long(k.SYS_MOUNT_SETATTR),
            ctypes.c_long(k.AT_FDCWD),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.c_long(k.AT_RECURSIVE if recursive else 0),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        self._check(ret, f"mount_setattr {path} (set={attr_set:#x}, clear={attr_clr:#x})")

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        ret = self._libc.syscall(ctypes.c_long(k.SYS_OPEN_TREE), ctypes.c_int(dirfd),
                                 ctypes.c_char_p(os.fsencode(path)), ctypes.c_uint(flags))
        return self._check(ret, f"open_tree {path!r} from fd {dirfd} (flags={flags:#x})")

    def mount_setattr_idmap(self, tree_fd: int, userns_fd: int, recursive: bool) -> None:
        attr = _MountAttr(k.MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        ret = self._libc.syscall(
            ctypes.c_long(k.SYS_MOUNT_SETATTR),
            ctypes.c_int(tree_fd),
            ctypes.c_char_p(b""),
            ctypes.c_uint(k.AT_EMPTY_PATH | (k.AT_RECURSIVE if recursive else 0)),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        self._check(ret, f"mount_setattr idmap of mount fd {tree_fd} (user namespace fd {userns_fd})")

    def move_mount(self, from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None:
        ret = self._libc.syscall(ctypes.c_long(k.SYS_MOVE_MOUNT), ctypes.c_int(from_dirfd),
                                 ctypes.c_char_p(os.fsencode(from_path)), ctypes.c_int(to_dirfd),
                                 ctypes.c_char_p(os.fsencode(to_path)), ctypes.c_uint(flags))
        self._check(ret, f"move_mount {from_path!r} of fd {from_dirfd} to {to_path!r} of fd {to_dirfd} "
                         f"(flags={flags:#x})")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        ret = self._libc.syscall(
            ctypes.c_long(self._pivot_root_nr),
            ctypes.c_char_p(os.fsencode(new_root)),
            ctypes.c_char_p(os.fsencode(put_old)),
        )
        self._check(ret, f"pivot_root {new_root} (old root at {put_old})")

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), f"sethostname {name!r}")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        ret: int = self._libc.prctl(option, arg2, arg3, arg4, arg5)
        if ret == -1:  # the text only then: every pod monitor calls this (as unshare, setns above)
            raise _fail(f"prctl(option={option}, {arg2}, {arg3})")
        return ret

    def capget(self) -> tuple[int, int, int]:
        header = _CapHeader(k.LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        self._check(self._libc.capget(ctypes.byref(header), data), "capget(self)")
        effective, permitted, inheritable = (
            getattr(data[0], f) | (getattr(data[1], f) << 32) for f in ("effective", "permitted", "inheritable")
        )
        return effective, permitted, inheritable

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = _CapHeader(k.LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for half in (0, 1):
            shift = 32 * half
            data[half].effective = (effective >> shift) & 0xFFFFFFFF
            data[half].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[half].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        ret = self._libc.capset(ctypes.byref(header), data)
        self._check(
            ret, f"capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x})"
        )

    def setgroups(self, gids: Sequence[int]) -> None:
        try:
            os.setgroups(list(gids))
        except OSError as e:
            raise OSError(e.errno, f"setgroups({list(gids)}): {e.strerror}") from e

    def mknod(self, path: str, mode: int, device: int) -> None:
        try:
            os.mknod(path, mode, device)
        except OSError as e:
            raise OSError(e.errno, f"mknod {path} (mode={mode:#o}, device={device:#x}): {e.strerror}") from e

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        how = _OpenHow(flags, mode, resolve)
        ret = self._libc.syscall(
            ctypes.c_long(k.SYS_OPENAT2),
            ctypes.c_long(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        return self._check(ret, f"openat2 {path!r} from fd {dirfd} (flags={flags:#o}, resolve={resolve:#x})")

    def pidfd_open(self, pid: int) -> int:
        try:
            return os.pidfd_open(pid)
        except OSError as e:
            raise OSError(e.errno, f"pidfd_open(pid {pid}): {e.strerror}") from e

    def wait_pidfd(self, pidfd: int, options: int = os.WEXITED) -> os.waitid_result | None:
        try:
            return os.waitid(os.P_PIDFD, pidfd, options)
        except OSError as e:
            raise OSError(e.errno, f"waitid(P_PIDFD, fd {pidfd}): {e.strerror}") from e

    def close_range(self, first: int, last: int = k.CLOSE_RANGE_MAX_FD, flags: int = 0) -> None:
        ret = self._libc.syscall(
            ctypes.c_long(k.SYS_CLOSE_RANGE), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)
        )
        if ret == -1:
            if ctypes.get_errno() != errno.ENOSYS:  # kernels before 5.9 lack it: list and close instead
                raise _fail(f"close_range({first}, {last}, flags={flags:#x})")
            _close_range_by_listing(first, last, flags)


def _close_range_by_listing(first: int, last: int, flags: int) -> None:
    # listdir's own directory fd is closed again before it returns, so every listed fd is real or gone.
    for fd in sorted(int(name) for name in os.listdir("/proc/self/fd")):
        if first <= fd <= last:
            if flags & k.CLOSE_RANGE_CLOEXEC:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass  # closed meanwhile
            else:
                try:
                    os.close(fd)
                except OSError:
                    pass  # already closed
