"""The pod monitor: one small process per pod that owns everything the pod runs.

Forked by the fork server, it shares the fork server's frozen heap copy-on-write; what it keeps
of its own is the pages it writes (refcounts, allocations, caches), so it writes as few as it can:
its set-up (making and pinning the pod's namespaces, binding its socket, reporting to the agent)
runs in a short-lived child, and so does decoding a start's or an exec's spec (hack/bench measures
what a pod costs). Then it serves the agent on the pod's socket (runtime/process/protocol.py): it
starts the pause process and the containers, runs execs, copies container output into the CRI
logs and records every exit.

It is a subreaper, so every process of the pod ends up its child: it alone reaps them, and a pid it
holds cannot be reused under it. That is what makes the pod's PID namespace safe to join (held by
a descriptor from the moment the pause made it) and an exec's target certain.

Fault domain: the monitor's death costs its own pod (the agent sees it by pidfd and fails the pod,
as containerd does when a shim dies) and nothing else: other pods have monitors of their own, and
the agent and the fork server may die or restart without touching any of them.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from runtime.errors import AlreadyExists, DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from runtime.linux import constants as k
from runtime.linux.poll import wait_readable
from runtime.linux.proc import start_time
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import handover, protocol, sockpath
from runtime.process.build import build_id
from runtime.process.children import Children, bare_fork, has_children, set_comm
from runtime.process.exec import open_namespaces, run_exec
from runtime.process.initspec import HOST, POD, TARGET_PREFIX
from runtime.process.monitor import DROPPED_FILE, LogFile, Watcher, open_log
from runtime.process.starter import NEW, run_starter
from runtime.sandbox.namespaces import PinSpec, make
from runtime.sandbox.pause import run_pause

START_TIMEOUT = 60.0  # seconds for a start the agent gave no deadline; a stuck init is killed after
log = logging.getLogger("pycrid.monitor")
# Made on import, in the fork server: each monitor uses this one rather than building its own.
_SYSCALLS = LinuxSyscalls()


@dataclass
class Pending:
    """A start or pause under way: its child's report is awaited, then the agent is answered."""

    kind: str  # "start" | "pause"
    pid: int  # the starter or pause helper (it leads a process group with what it forks)
    report: socket.socket
    reply: socket.socket  # the agent's connection, answered when the report comes
    deadline: float
    container: str = ""  # a start's container id and exit file
    exit_file: str = ""
    log: LogFile | None = None
    pipes: dict[int, bytes] = field(default_factory=dict)  # read ends of init's stdout, stderr

    def close(self) -> None:
        self.report.close()
        self.reply.close()
        for fd in self.pipes:
            os.close(fd)
        if self.log is not None:
            self.log.close()


class PodMonitor:
    def __init__(self, sandbox_id: str, path: str, listener: socket.socket) -> None:
        self.id = sandbox_id
        self.path = path
        self.listener = listener
        self.watcher = Watcher()
        self.children = Children()
        self.pending: list[Pending] = []
        self.conns: list[socket.socket] = []
        self.pause_pid = 0
        self.pause_alive = False
        self.pid_namespace = -1  # the pause's PID namespace, held from the moment it was made
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # --- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # ended only by a shutdown request: it owns a pod
        inode = os.stat(self.path).st_ino
        while not (self.stopping and self._idle()):
            waits: list[int | socket.socket] = [self.listener, self.wake_r, *self.conns,
                                                *(p.report for p in self.pending), *self.watcher.fds()]
            for r in wait_readable(waits, self._timeout()):
                if r is self.listener:
                    self.conns.append(self.listener.accept()[0])
                elif r == self.wake_r:
                    os.read(self.wake_r, 4096)
                elif isinstance(r, int):
                    self.watcher.readable(r)
                elif r in self.conns:
                    self._serve_one(r)
                else:
                    self._reported(next(p for p in self.pending if p.report is r))
            self._reap()
            self.watcher.expire()
            self._expire_pending()
        sockpath.remove_if_ours(self.path, inode)
        log.info("pod monitor %d of sandbox %s exiting", os.getpid(), self.id[:12])

    def _idle(self) -> bool:
        return not self.pending and self.watcher.empty() and not has_children()

    def _timeout(self) -> float | None:
        due = [p.deadline - time.monotonic() for p in self.pending]
        drain = self.watcher.timeout()
        if drain is not None:
            due.append(drain)
        return max(0.0, min(due)) if due else None

    def _reap(self) -> None:
        for pid, status in self.children.reap():
            if pid == self.pause_pid:
                self.pause_alive = False
                log.warning("sandbox %s: pause %d exited (status %d)", self.id[:12], pid, status)
            elif not self.watcher.exited(pid, status):
                self.children.remember(pid, status)

    def _expire_pending(self) -> None:
        now = time.monotonic()
        for p in [p for p in self.pending if p.deadline <= now]:
            self.children.kill_group(p.pid)
            what = p.container or "pause"
            self._answer(p, protocol.error_message(DeadlineExceeded(
                f"{p.kind} of {what}: not done by its deadline; killed")))

    # --- requests ------------------------------------------------------------------------
    def _serve_one(self, conn: socket.socket) -> None:
        self.conns.remove(conn)
        fds: list[int] = []
        try:
            message, fds = protocol.receive(conn)
            if message is None:
                conn.close()
                return
            answer = self._handle(conn, message, fds)
        except Exception as e:  # noqa: BLE001 - a bad request fails alone
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            answer = protocol.error_message(e)
        if answer is not None:  # None: answered when the started child reports
            try:
                protocol.send(conn, answer)
            except OSError:
                pass
            conn.close()

    def _handle(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> dict[str, Any] | None:
        op = message.get("op")
        if op == "ping":
            return {"pid": os.getpid(), "build": build_id(), "protocol": protocol.PROTOCOL,
                    "pause": self.pause_pid, "pause_alive": self.pause_alive,
                    "containers": self.watcher.running()}
        if op == "exec":
            return self._exec(message["spec"], fds)
        if fds:
            raise InvalidArgument(f"request {op!r} takes no file descriptors")
        if self.stopping and op in ("pause", "start"):
            raise FailedPrecondition(f"sandbox {self.id} is stopping")
        if op == "pause":
            self._pause(conn, message["spec"])
            return None
        if op == "start":
            self._start(conn, message["spec"], float(message.get("timeout") or START_TIMEOUT))
            return None
        if op == "reopen":
            watched = self.watcher.find(str(message.get("id")))
            if watched is None or watched.status is not None:
                raise FailedPrecondition(f"container {message.get('id')} is not running")
            watched.log.reopen()
            return {}
        if op == "shutdown":
            self._stop_everything()
            return {}
        if op == "upgrade":
            self._upgrade(conn, *handover.check_target(message.get("argv"), message.get("env", {})))
        raise InvalidArgument(f"unknown request {op!r}")

    def _pause(self, conn: socket.socket, spec: dict[str, Any]) -> None:
        if self.pause_pid or any(p.kind == "pause" for p in self.pending):
            raise AlreadyExists(f"sandbox {self.id} has a pause process")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = self.children.fork(b"pycrid-pause", lambda: run_pause(spec, theirs), keep=(theirs.fileno(),))
        theirs.close()
        self.pending.append(Pending("pause", pid, ours, conn, time.monotonic() + START_TIMEOUT))

    def _start(self, conn: socket.socket, spec: dict[str, Any], timeout: float) -> None:
        """``spec`` is an InitSpec as a dict: the starter child builds the InitSpec itself, so this
        long-lived process reads only the few fields it needs (~0.2 MiB less for it to keep)."""
        container, log_path, state_dir = str(spec["id"]), str(spec.get("log_path", "")), str(spec.get("state_dir", ""))
        if container in self.watcher.running() or any(p.container == container for p in self.pending):
            raise AlreadyExists(f"container {container} is already started")
        namespace, owned = self._pid_namespace(container, str(spec.get("namespaces", {}).get("pid", "")))
        try:
            log_file = LogFile(log_path, open_log(log_path), os.path.join(state_dir, DROPPED_FILE) if state_dir else "")
        except OSError as e:
            if owned >= 0:
                os.close(owned)
            raise FailedPrecondition(f"container {container}: opening its log {log_path}: {e}") from e
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        stdio = (null, out_w, err_w)
        keep = (theirs.fileno(), *stdio, *((namespace,) if isinstance(namespace, int) else ()))
        try:
            pid = self.children.fork(b"pycrid-start", lambda: run_starter(spec, namespace, stdio, theirs), keep=keep)
        finally:
            for fd in (*stdio, *((owned,) if owned >= 0 else ())):
                os.close(fd)
            theirs.close()
        self.pending.append(Pending("start", pid, ours, conn, time.monotonic() + timeout, container,
                                    str(spec.get("exit_file", "")), log_file, {out_r: b"stdout", err_r: b"stderr"}))

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
        """``spec`` is an ExecSpec as a dict, decoded by the exec child (as a start's by its starter)."""
        container = str(spec["id"])
        if len(fds) != 4:
            raise InvalidArgument(f"exec in container {container}: needs 4 descriptors, got {len(fds)}")
        try:
            target = self.watcher.find(container)
            if target is None or target.status is not None:
                raise FailedPrecondition(f"container {container} is not running")
            try:
                namespaces = open_namespaces(target.pid)
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

    def _reported(self, p: Pending) -> None:
        try:
            message, fds = protocol.receive(p.report)
        except (OSError, ValueError) as e:
            message, fds = {"error": f"reading its report: {e}"}, []
        if message is None:
            message = {"error": f"{p.kind} helper {p.pid} exited without a report"}
        if "error" in message:
            for fd in fds:
                os.close(fd)
            self.children.kill_group(p.pid)  # whatever it forked and left behind (a stuck init)
            self._answer(p, message)
            return
        if p.kind == "pause":
            self.pause_pid, self.pid_namespace = int(message["pid"]), fds[0]
            self.pause_alive = self.children.exited_early(self.pause_pid) is None
        else:
            assert p.log is not None
            watched = self.watcher.adopt(p.container, int(message["pid"]), p.exit_file, p.log, p.pipes)
            p.log, p.pipes = None, {}
            status = self.children.exited_early(watched.pid)
            if status is not None:
                self.watcher.exited(watched.pid, status)
        self._answer(p, message)

    def _answer(self, p: Pending, message: dict[str, Any]) -> None:
        self.pending.remove(p)
        try:
            protocol.send(p.reply, message)
        except OSError:
            pass  # the agent gave up waiting; what was started stays recorded here
        p.close()

    def _stop_everything(self) -> None:
        self.stopping = True
        for p in self.pending:
            self.children.kill_group(p.pid)
        for pid in [*self.watcher.running().values(), *((self.pause_pid,) if self.pause_alive else ())]:
            self.children.kill(pid)

    def _upgrade(self, conn: socket.socket, argv: list[str], env: dict[str, str]) -> NoReturn:
        if self.pending or self.conns:
            raise Unavailable(f"sandbox {self.id}: busy ({len(self.pending)} starts); try again")
        containers, fds = self.watcher.state()
        protocol.send(conn, {})
        conn.close()
        log.info("pod monitor %d of sandbox %s: re-exec into %s", os.getpid(), self.id[:12], " ".join(argv))
        keep = [self.listener.fileno(), *fds, *((self.pid_namespace,) if self.pid_namespace >= 0 else ())]
        handover.exec_with_state(argv, env, {
            "sandbox": self.id, "socket": self.path, "listener": self.listener.fileno(),
            "pause_pid": self.pause_pid, "pause_alive": self.pause_alive, "pid_namespace": self.pid_namespace,
            "containers": containers, "children": self.children.state(), "stopping": self.stopping}, keep)


def set_up(raw: dict[str, Any], listener: socket.socket, report_fd: int) -> bool:
    """The monitor's set-up, in a short-lived child that reports to the agent itself: the pod's
    namespaces made and pinned, ``listener`` (this process's, shared) bound at the pod's socket
    path and listening, then this monitor's pid and start time, or the failure. The namespaces
    live on in their pins; what the set-up touches (ctypes, ioctls, mounts, sysctl files, the
    report) goes with the child instead of staying private to this long-lived process (~0.5 MiB)."""
    pid = bare_fork()
    if pid == 0:
        code = 1
        with socket.socket(fileno=report_fd) as report:
            try:
                # The agent's own PinSpec.to_dict(): plain keywords, no decoding needed.
                make(PinSpec(**raw["pins"]), LinuxSyscalls())
                sockpath.listen_on(listener, raw["socket"])
                monitor = os.getppid()
                protocol.send(report, {"ok": {"pid": monitor, "start_time": start_time(monitor)}})
                code = 0
            except Exception as e:  # noqa: BLE001 - the agent turns it into the CRI error
                protocol.send(report, protocol.error_message(e))
            finally:
                os._exit(code)
    return os.waitpid(pid, 0)[1] == 0


def run_monitor(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target. raw: {"id", "socket", "pins": PinSpec}; fds: [report]."""
    _SYSCALLS.prctl(k.PR_SET_CHILD_SUBREAPER, 1)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    ready = set_up(raw, listener, fds[0])
    os.close(fds[0])
    if not ready:
        return 1
    PodMonitor(raw["id"], raw["socket"], listener).serve()
    return 0


def resume(fd: int) -> PodMonitor:
    """The monitor a previous build handed over before it exec'd us."""
    state = handover.read_state(fd)
    monitor = PodMonitor(state["sandbox"], state["socket"], socket.socket(fileno=int(state["listener"])))
    monitor.pause_pid, monitor.pause_alive = int(state["pause_pid"]), bool(state["pause_alive"])
    monitor.pid_namespace = int(state["pid_namespace"])
    monitor.stopping = bool(state.get("stopping"))
    monitor.children.restore(state.get("children", {}))
    held = monitor.watcher.restore(state["containers"])
    handover.restore_cloexec([monitor.listener.fileno(), *held,
                              *((monitor.pid_namespace,) if monitor.pid_namespace >= 0 else ())])
    return monitor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pycrid-monitor")
    parser.add_argument("--resume", type=int, required=True, help="the state a previous build handed over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r")
    set_comm(b"pycrid-monitor")
    LinuxSyscalls().prctl(k.PR_SET_CHILD_SUBREAPER, 1)  # kept across execve; said again for clarity
    resume(args.resume).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
