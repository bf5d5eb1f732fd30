"""FakeSyscalls: the test double for the ``Syscalls`` seam.

It records every call as ``(name, args)`` in ``calls`` and touches nothing, so unit tests of code
that decides and then acts can assert on the exact kernel calls made, in order, without root.
``fail()`` makes a chosen call raise an ``OSError`` with a chosen errno, to test error paths.

``open_tree`` returns an O_PATH fd of "/" rather than a tree, for the caller to close.
One call is recorded and then passed to the kernel: ``openat2`` only opens, needs no privilege, and
its fds are what the code under test goes on to use (walking the real directories of a test's
rootfs, with the kernel's own RESOLVE_IN_ROOT). ``open_tree`` returns a duplicate of the fd it is
given, a real fd that the code can go on to use and close. A path given as /proc/self/fd/N (how fds are
mounted on) is also recorded as the place that fd named at the time of the call, in
``resolved_calls`` (and ``calls_to(name, resolved=True)``); ``fail``'s predicates see those places.

``run_in_child`` is for root tests that must change the kernel state of a process (namespaces,
seccomp, capabilities) without changing the test runner's own.
"""

import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from runtime.linux import constants as k
from runtime.linux.syscalls import LinuxSyscalls

Call = tuple[str, tuple[object, ...]]
_FD_DIR = "/proc/self/fd/"
T = TypeVar("T")


@dataclass
class _Failure:
    name: str
    errno: int
    when: Callable[..., bool] | None
    times: int | None  # None: every matching call fails


class FakeSyscalls:
    def __init__(self, capabilities: tuple[int, int, int] = ((1 << 41) - 1, (1 << 41) - 1, 0)) -> None:
        self.calls: list[Call] = []
        self.resolved_calls: list[Call] = []
        self.capabilities = capabilities  # what capget returns; capset updates it
        self._failures: list[_Failure] = []
        self._next_fd = 1000
        self._kernel: LinuxSyscalls | None = None

    def fail(
        self, name: str, errno: int, when: Callable[..., bool] | None = None, times: int | None = None
    ) -> None:
        """Make calls to ``name`` (whose args satisfy ``when``, if given) raise OSError(errno).

        The failing call is still recorded, so tests can see how far the code got."""
        self._failures.append(_Failure(name, errno, when, times))

    def calls_to(self, name: str, resolved: bool = False) -> list[tuple[object, ...]]:
        calls = self.resolved_calls if resolved else self.calls
        return [args for call_name, args in calls if call_name == name]

    def _record(self, name: str, *args: object) -> None:
        places = tuple(_place(a) for a in args)
        self.calls.append((name, args))
        self.resolved_calls.append((name, places))
        for failure in self._failures:
            if failure.name != name or failure.times == 0:
                continue
            if failure.when is not None and not failure.when(*places):
                continue
            if failure.times is not None:
                failure.times -= 1
            raise OSError(failure.errno, f"{name}{args}: {os.strerror(failure.errno)} (injected)")

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._record("setns", fd, nstype)

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
    ) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flags)

    def mount_setattr(
        self, path: str, attr_set: int, attr_clr: int = 0, propagation: int = 0, recursive: bool = True
    ) -> None:
        self._record("mount_setattr", path, attr_set, attr_clr, propagation, recursive)

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        """Recorded; a real fd (a duplicate of ``dirfd``) comes back, so that the code under test
        can use and close it."""
        self._record("open_tree", dirfd, path, flags)
        return os.dup(dirfd)

    def mount_setattr_idmap(self, tree_fd: int, userns_fd: int, recursive: bool) -> None:
        self._record("mount_setattr_idmap", tree_fd, userns_fd, recursive)

    def move_mount(self, from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None:
        self._record("move_mount", from_dirfd, from_path, to_dirfd, to_path, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        self._record("prctl", option, arg2, arg3, arg4, arg5)
        return 0

    def capget(self) -> tuple[int, int, int]:
        self._record("capget")
        return self.capabilities

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)
        self.capabilities = (effective, permitted, inheritable)

    def setgroups(self, gids: Sequence[int]) -> None:
        self._record("setgroups", tuple(gids))

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._record("mknod", path, mode, device)

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        self._record("openat2", dirfd, path, flags, mode, resolve)
        if self._kernel is None:
            self._kernel = LinuxSyscalls()
        return self._kernel.openat2(dirfd, path, flags, mode, resolve)

    def pidfd_open(self, pid: int) -> int:
        self._record("pidfd_open", pid)
        self._next_fd += 1
        return self._next_fd

    def wait_pidfd(self, pidfd: int, options: int = os.WEXITED) -> os.waitid_result | None:
        self._record("wait_pidfd", pidfd, options)
        return None

    def close_range(self, first: int, last: int = k.CLOSE_RANGE_MAX_FD, flags: int = 0) -> None:
        self._record("close_range", first, last, flags)


def _place(arg: object) -> object:
    """``arg``, or for a /proc/self/fd/N[/rest] path the path that fd names now (plus rest)."""
    if not isinstance(arg, str) or not arg.startswith(_FD_DIR):
        return arg
    fd, _, rest = arg[len(_FD_DIR):].partition("/")
    try:
        where = os.readlink(_FD_DIR + fd)
    except OSError:
        return arg  # not an fd of ours: shown as given
    return os.path.join(where, rest) if rest else where


def run_in_child(fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn`` in a forked child and return its result, or raise its exception, here.

    The child always leaves by os._exit (never through the caller's stack or atexit hooks) and is
    always reaped; past ``timeout`` seconds it is killed and TimeoutError is raised. Call it only
    from a single-threaded process."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
                try:
                    payload = pickle.dumps((False, e))
                except Exception:
                    payload = pickle.dumps((False, RuntimeError(repr(e))))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"child {pid} did not finish in {timeout}s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError(f"child {pid} died without reporting")
    ok, value = pickle.loads(b"".join(chunks))
    if not ok:
        raise value
    return cast(T, value)  # the child pickled fn()'s result


class FakeCgroupDeviceBpf:
    """The test double for runtime.linux.bpf.CgroupDeviceBpf: keeps the program last attached to
    each cgroup directory (an attach replaces, as the real one does) and touches no kernel."""

    def __init__(self) -> None:
        self.programs: dict[str, bytes] = {}
        self.attaches = 0

    def attach_device_program(self, cgroup_dir: str, insns: bytes) -> None:
        if not os.path.isdir(cgroup_dir):
            raise FileNotFoundError(2, f"bpf attach: no cgroup {cgroup_dir}")
        self.programs[cgroup_dir] = insns
        self.attaches += 1

    def device_programs(self, cgroup_dir: str) -> list[int]:
        return [1] if cgroup_dir in self.programs else []
