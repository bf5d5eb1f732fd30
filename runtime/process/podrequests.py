"""The requests of a pod monitor that start and reach the pod's processes: its pause (forked here:
runtime/process/pausestart.py), its containers, execs, attach clients; what PodMonitor (its loop
and its replies) dispatches to. A start is not answered at once: it is Pending until its child
reports, so one slow container set-up never holds up the monitor.

The monitor forks a container's init itself, into the container's PID namespace (pidnsfork.py),
and follows its set-up message by message as its loop reads them (initwatch.py); init builds its
InitSpec from the dict itself, so this long-lived process never holds a parsed spec. A restore
from a checkpoint runs CRIU in a short-lived starter child instead (starter.py).

A container may be prepared (CreateContainer) before it is started: its init sets up and waits
before it drops privileges, so StartContainer only lets it go on. The prepared start is kept
here; a start that finds none (discarded, its init dead, a monitor re-exec'd since) does the
whole set-up, so preparing never changes what a start does, only when the work is done.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from runtime.linux.syscalls import Syscalls
from runtime.process import init, protocol
from runtime.process.attach import Attacher, Stdin
from runtime.process.children import Children
from runtime.process.exec import open_namespaces, run_exec
from runtime.process.initspec import HOST, POD, TARGET_PREFIX
from runtime.process.initwatch import InitWatch
from runtime.process.monitor import DROPPED_FILE, LogFile, Watched, Watcher, open_log
from runtime.process.pausestart import CGROUPS, PauseSetUp, start_pause
from runtime.process.pidnsfork import NEW, fork_in
from runtime.process.starter import run_starter
from runtime.process.stdio import container_stdio

START_TIMEOUT = 60.0  # seconds for a start the agent gave no deadline; a stuck init is killed after
_CGROUPS = CGROUPS  # the one the fork server made for the pause too (pausestart.py)
_V2 = CGROUPS.version == "v2"  # a process cannot move itself into a v2 cgroup cheaply: we move init


@dataclass
class Pending:
    """A start or pause under way: its child's report is awaited, then the agent is answered."""

    kind: str  # "start" | "prepare" | "pause"
    pid: int  # init or the pause (each leads its own session), or a restore's starter (its process group)
    report: socket.socket  # init's or the pause's sync socket, or the starter's report
    reply: socket.socket  # the agent's connection, answered when the report comes
    deadline: float
    container: str = ""  # a start's container id, exit file and terminal flags
    exit_file: str = ""
    tty: bool = False
    stdin_once: bool = False
    log: LogFile | None = None
    pipes: dict[int, bytes] = field(default_factory=dict)  # read ends of init's stdout, stderr
    stdin: Stdin = field(default_factory=Stdin)  # its stdin pipe's write end (a terminal comes later)
    asked_at: float = 0.0  # when the agent's request was read (CLOCK_MONOTONIC): a start's first mark
    watch: InitWatch | None = None  # init's set-up so far (None: a helper's one report is awaited)
    ended: bool = False  # killed already (its end is read next): not to be killed twice
    pause: PauseSetUp | None = None  # the pause's (kind "pause")

    def close(self) -> None:
        self.reply.close()
        self.release()

    def release(self) -> None:
        """Closes all but the agent's connection."""
        if self.watch is not None:
            self.watch.close()
        self.report.close()
        for fd in self.pipes:
            os.close(fd)
        self.stdin.close()
        if self.log is not None:
            self.log.close()
        if self.pause is not None:
            self.pause.close()


class PodRequests:
    """Mixed into PodMonitor, which owns the state these use."""

    id: str
    syscalls: Syscalls
    watcher: Watcher
    children: Children
    pending: list[Pending]
    prepared: dict[str, Pending]  # container → its set-up init, held (kind "prepare")
    pause_pid: int
    pause_alive: bool
    pid_namespace: int

    def _pause(self, conn: socket.socket, spec: dict[str, Any]) -> None:
        """Forks the pause itself; its set-up is awaited in the loop (PodMonitor._pause_synced)."""
        if self.pause_pid or any(p.kind == "pause" for p in self.pending):
            raise AlreadyExists(f"sandbox {self.id} has a pause process")
        pid, sync, set_up = start_pause(spec, self.children, self.syscalls)
        self.pending.append(Pending("pause", pid, sync, conn, time.monotonic() + START_TIMEOUT, pause=set_up))

    def _start(self, conn: socket.socket, spec: dict[str, Any], timeout: float, prepare: bool = False) -> None:
        """``spec`` is an InitSpec as a dict: init (or a restore's starter) builds the InitSpec
        itself, so this long-lived process reads only the few fields it needs (~0.2 MiB less for
        it to keep). ``prepare``: hold the set-up init until a start comes (_go)."""
        asked_at = time.monotonic()
        container, log_path, state_dir = str(spec["id"]), str(spec.get("log_path", "")), str(spec.get("state_dir", ""))
        tty, stdin, stdin_once = bool(spec.get("tty")), bool(spec.get("stdin")), bool(spec.get("stdin_once"))
        if not prepare and self._go(conn, container, timeout, asked_at):
            return
        if (container in self.watcher.running() or container in self.prepared
                or any(p.container == container for p in self.pending)):
            raise AlreadyExists(f"container {container} is already {'prepared' if prepare else 'started'}")
        restore = bool(spec.get("restore"))
        if restore and prepare:
            raise InvalidArgument(f"container {container}: a restore from a checkpoint is not prepared, only started")
        namespace, owned = self._pid_namespace(container, str(spec.get("namespaces", {}).get("pid", "")))
        try:
            log_file = LogFile(log_path, open_log(log_path), os.path.join(state_dir, DROPPED_FILE) if state_dir else "")
        except OSError as e:
            if owned >= 0:
                os.close(owned)
            raise FailedPrecondition(f"container {container}: opening its log {log_path}: {e}") from e
        stdio, ours_ends = container_stdio(tty, stdin, stdin_once)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        p = Pending("prepare" if prepare else "start", 0, ours, conn, time.monotonic() + timeout, container,
                    str(spec.get("exit_file", "")), tty, stdin_once, log_file, ours_ends.outputs, ours_ends.stdin,
                    asked_at, None if restore else InitWatch(hold=prepare))
        try:
            if p.watch is None:
                p.pid = self.children.fork(b"pycrid-start", lambda: run_starter(spec, stdio, theirs),
                                           keep=(theirs.fileno(), *stdio))
            else:
                self._fork_init(p, p.watch, spec, namespace, stdio, theirs)
        except BaseException:
            p.release()  # the caller answers conn
            raise
        finally:
            for fd in {*stdio, *((owned,) if owned >= 0 else ())}:
                os.close(fd)
            theirs.close()
        self.pending.append(p)

    def _fork_init(self, p: Pending, watch: InitWatch, spec: dict[str, Any], namespace: str | int,
                   stdio: tuple[int, int, int], theirs: socket.socket) -> None:
        """Forks the container's init in its PID namespace and puts it in its cgroup: on v1 init
        moves itself, a hundred times faster than we could (selfjoin.py, init.start); on v2 we
        move it, then tell it so. Its set-up is followed by ``watch``."""
        cgroup = str(spec.get("cgroup") or "")
        p.pid = fork_in(namespace, lambda: self.children.fork(
            b"pycrid-init", lambda: init.start(spec, theirs, stdio, _CGROUPS, watch.hold),
            keep=(theirs.fileno(), *stdio), reported=True), self.syscalls)
        watch.marks.append(("monitor.fork", time.monotonic()))
        p.report.setblocking(False)  # read as it comes, by the loop: never waited on
        if cgroup and _V2:
            try:
                _CGROUPS.add_process(cgroup, p.pid)
            except Exception as e:  # noqa: BLE001 - told when init's end closes, unless init says better
                watch.failed = e
                self._end(p)
                return
            watch.marks.append(("monitor.cgroup", time.monotonic()))
        try:
            p.report.send(protocol.JOINED)
        except OSError:
            pass  # init already failed and closed its end: its report is waiting to be read

    def _go(self, conn: socket.socket, container: str, timeout: float, asked_at: float) -> bool:
        """Lets a prepared init go on; False if there is none, or it is gone."""
        p = self.prepared.pop(container, None)
        if p is None:
            return False
        try:
            p.report.send(protocol.GO)
        except OSError:
            self._drop(p)
            return False
        p.kind, p.reply, p.deadline, p.asked_at = "start", conn, time.monotonic() + timeout, asked_at
        if p.watch is not None:
            p.watch.marks.append(("monitor.go", time.monotonic()))
        self.pending.append(p)
        return True

    def _discard(self, container: str) -> None:
        p = self.prepared.pop(container, None)
        if p is not None:
            self._drop(p)

    def _drop(self, p: Pending) -> None:
        """Ends a prepared start: its init's session (all it forked)."""
        self._end(p)
        p.close()

    def _end(self, p: Pending) -> None:
        """Kills what a start or pause forked: init's session (its exit is no container's to
        record), or the helper's process group."""
        if p.ended:
            return
        p.ended = True
        if p.watch is not None:
            self.children.end(p.pid)
        else:
            self.children.kill_group(p.pid)

    def _running(self, container_id: str) -> Watched:
        watched = self.watcher.find(container_id)
        if watched is None or watched.status is not None:
            raise FailedPrecondition(f"container {container_id} is not running")
        return watched

    def _attach(self, container_id: str, streams: list[str], fds: list[int]) -> None:
        """fds, in the order of ``streams`` ("stdin", "stdout", "stderr"): the read end of what the
        client types, the write ends the client reads the container's output from."""
        watched = self._running(container_id)
        if len(streams) != len(fds) or not set(streams) <= {"stdin", "stdout", "stderr"}:
            raise InvalidArgument(f"attach to {container_id}: streams {streams} and {len(fds)} descriptors")
        given = dict(zip(streams, fds))
        if "stdin" in given and watched.stdin.fd < 0:
            raise FailedPrecondition(f"container {container_id} has no stdin to attach to (created without "
                                     "stdin, or stdin_once and used)")
        watched.stdin.attach(Attacher({s.encode(): fd for s, fd in given.items() if s != "stdin"},
                                      given.get("stdin", -1)))

    def _pid_namespace(self, container: str, where: str) -> tuple[str | int, int]:
        """Where init's PID namespace comes from (``where``: its InitSpec mode), and a descriptor
        opened for it (-1: none)."""
        if where == HOST:
            return HOST, -1
        if not where:
            return NEW, -1
        if where == POD:
            if not self.pause_alive:
                raise FailedPrecondition(f"sandbox {self.id}: its pause process (PID namespace) is gone")
            return self.pid_namespace, -1
        target = self.watcher.find(where.removeprefix(TARGET_PREFIX)) if where.startswith(TARGET_PREFIX) else None
        if target is None or target.status is not None:
            raise FailedPrecondition(f"container {container}: target {where} is not running in sandbox {self.id}")
        fd = os.open(f"/proc/{target.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # our child: not reused
        return fd, fd

    def _exec(self, spec: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """``spec`` is an ExecSpec as a dict, decoded by the exec child (as a start's by its init)."""
        container = str(spec["id"])
        if len(fds) != 4:
            raise InvalidArgument(f"exec in container {container}: needs 4 descriptors, got {len(fds)}")
        try:
            target = self.watcher.find(container)
            if target is None or target.status is not None:
                raise FailedPrecondition(f"container {container} is not running")
            try:
                namespaces = open_namespaces(target.pid, user=bool(spec.get("user_namespace")))
            except OSError as e:  # it exited and we have not reaped it yet
                raise FailedPrecondition(f"container {container} is exiting: {e}") from e
            report = socket.socket(fileno=fds[0])
            stdio = (fds[1], fds[2], fds[3])
            try:
                pid = self.children.fork(b"pycrid-exec", lambda: run_exec(spec, namespaces, report, stdio),
                                         keep=(*fds, *namespaces.values()))
            finally:
                for fd in namespaces.values():
                    os.close(fd)
                report.close()
        finally:
            for fd in fds[1:]:
                os.close(fd)
        return {"pid": pid}
