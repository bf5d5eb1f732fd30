"""Running CRIU: the arguments of a container's dump and restore (pure), and the binary run within
a deadline, with the tail of its log in the error when it fails.

What a pycrid container looks like to CRIU (README, "Checkpoint and restore"): its init is PID 1
of its own PID namespace; its network namespace is the pod's (external: the restore hands CRIU the
new pod's by descriptor), its IPC and UTS namespaces the pod's too (dumped, and joined rather
than made again on restore); the bind mounts from the host (volumes, /etc/hosts, the pod's
/dev/shm, cgroup v1 directories, masked files) are external mounts keyed by their path in the
container; its stdio are pipes (and /dev/null) from the pod monitor, named again on restore with
--inherit-fd. Cgroups are left alone (--manage-cgroups=ignore): the restore runs in the new
container's cgroup, and its tasks stay there.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import DeadlineExceeded, FailedPrecondition

NET_KEY = "extRootNetNS"  # the key runc and CRI-O give the external network namespace
DUMP_LOG = "dump.log"
RESTORE_LOG = "restore.log"
_COMMON = ("-v4", "--manage-cgroups=ignore", "--network-lock", "skip", "--file-locks")
_LOG_TAIL_LINES = 6
_LOG_TAIL_CHARS = 2000
# CRIU logs as an error that it could not raise its own fd limit, then carries on: not why it failed.
_NOT_THE_REASON = "Can't setup RLIMIT_NOFILE"


@dataclass(frozen=True)
class DumpPlan:
    pid: int  # the container's init, on the host
    images_dir: str
    net_inode: int  # of the pod's network namespace
    mounts: tuple[str, ...] = ()  # the external mounts, by their path in the container
    files: tuple[str, ...] = ()  # external files held open by init (stdio), as file[mnt:inode]
    freeze_seconds: int = 10  # CRIU's own bound on freezing the tree


def dump_args(plan: DumpPlan) -> list[str]:
    args = ["dump", "--tree", str(plan.pid), "--images-dir", plan.images_dir, "--log-file", DUMP_LOG,
            *_COMMON, "--leave-running", "--timeout", str(max(1, plan.freeze_seconds)),
            "--external", f"net[{plan.net_inode}]:{NET_KEY}"]
    for path in plan.mounts:
        args += ["--external", f"mnt[{path}]:{path}"]
    for key in plan.files:
        args += ["--external", key]
    return args


@dataclass(frozen=True)
class RestorePlan:
    images_dir: str
    rootfs: str  # the container's overlay, mounted where CRIU runs
    pidfile: str
    netns_fd: int  # the new pod's network namespace
    join: tuple[tuple[str, str], ...] = ()  # (ipc | uts, the new pod's pinned namespace) to join
    mounts: tuple[tuple[str, str], ...] = ()  # (key, host path)
    stdio: tuple[tuple[str, int], ...] = ()  # (the dumped fd's key, the new fd for it)


def restore_args(plan: RestorePlan) -> list[str]:
    args = ["restore", "--images-dir", plan.images_dir, "--log-file", RESTORE_LOG, *_COMMON,
            "--restore-detached", "--pidfile", plan.pidfile, "--root", plan.rootfs,
            "--inherit-fd", f"fd[{plan.netns_fd}]:{NET_KEY}"]
    for kind, path in plan.join:
        args += ["--join-ns", f"{kind}:{path}"]
    for key, host in plan.mounts:
        args += ["--external", f"mnt[{key}]:{host}"]
    for key, fd in plan.stdio:
        args += ["--inherit-fd", f"fd[{fd}]:{key}"]
    return args


def log_tail(path: str) -> str:
    """What a failed run's log says: its errors if it names any, else its last lines."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return f"(no log: {e})"
    errors = [line.strip() for line in lines if "Error (" in line and _NOT_THE_REASON not in line]
    tail = " | ".join((errors or lines)[-_LOG_TAIL_LINES:])
    return tail[-_LOG_TAIL_CHARS:]


class Criu(Protocol):
    def run(self, args: Sequence[str], work_dir: str, timeout: float, pass_fds: Sequence[int] = ()) -> None:
        """Runs criu with ``args`` (its log file in ``work_dir``); DeadlineExceeded after
        ``timeout`` seconds, FailedPrecondition with the log's tail when it fails."""


def find_criu(path: str = "criu") -> str:
    found = shutil.which(path)
    if found is None:
        raise FailedPrecondition(f"checkpoint/restore needs CRIU: {path!r} is not installed "
                                 "(hack/criu.sh installs it)")
    return found


class CriuBinary:
    """``own_group``: criu leads a process group of its own, ended as one at the deadline; else it
    stays in ours (the pod monitor's starter, whose group the monitor ends at the start's deadline)."""

    def __init__(self, path: str, own_group: bool = True) -> None:
        self.path = path
        self.own_group = own_group

    def run(self, args: Sequence[str], work_dir: str, timeout: float, pass_fds: Sequence[int] = ()) -> None:
        what = f"criu {args[0]}"
        try:
            process = subprocess.Popen([self.path, *args], cwd=work_dir, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=tuple(pass_fds),
                                       start_new_session=self.own_group)
        except OSError as e:
            raise FailedPrecondition(f"{what}: cannot run {self.path}: {e}") from e
        try:
            _, stderr = process.communicate(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            if self.own_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.communicate()
            raise DeadlineExceeded(f"{what} did not finish within {timeout:.1f}s; stopped") from None
        if process.returncode != 0:
            log = os.path.join(work_dir, args[args.index("--log-file") + 1]) if "--log-file" in args else ""
            # No log: criu stopped before opening it (a refused option, say) and said why on stderr.
            said = log_tail(log) if log and os.path.exists(log) else ""
            said = said or stderr.decode("utf-8", "replace").strip()[-_LOG_TAIL_CHARS:] or log_tail(log)
            raise FailedPrecondition(f"{what} failed (exit {process.returncode}): {said}")
