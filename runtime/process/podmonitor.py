"""The pod monitor: one small process per pod that owns everything the pod runs.

Forked by the fork server, it shares the fork server's frozen heap copy-on-write; what it keeps
of its own is the pages it writes (refcounts, allocations, caches), so it writes as few as it can:
its set-up (making and pinning the pod's namespaces, binding its socket, reporting to the agent)
runs in a short-lived child, and so does decoding a start's or an exec's spec (hack/bench measures
what a pod costs). Then it serves the agent on the pod's socket (runtime/process/protocol.py): it
starts the pause process and the containers, runs execs, serves attach clients, copies container
output into the CRI logs and records every exit.

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
from typing import Any, NoReturn

from runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from runtime.linux import constants as k
from runtime.linux.poll import wait_readable
from runtime.linux.proc import start_time
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.terminal import set_window
from runtime.process import handover, protocol, sockpath
from runtime.process.attach import Stdin
from runtime.process.build import build_id
from runtime.process.children import IGNORE, Children, bare_fork, has_children, set_comm, set_handler
from runtime.process.initwatch import CREATED, EXECED, InitWatch
from runtime.process.monitor import Watcher
from runtime.process.pausestart import PauseSetUp, abandon, read_sync
from runtime.process.podrequests import START_TIMEOUT, Pending, PodRequests
from runtime.sandbox.namespaces import PinSpec, make

log = logging.getLogger("pycrid.monitor")
# Made on import, in the fork server: each monitor uses this one rather than building its own.
_SYSCALLS = LinuxSyscalls()


class PodMonitor(PodRequests):
    def __init__(self, sandbox_id: str, path: str, listener: socket.socket) -> None:
        self.id = sandbox_id
        self.syscalls = _SYSCALLS
        self.path = path
        self.listener = listener
        self.watcher = Watcher()
        self.children = Children()
        self.pending: list[Pending] = []
        self.prepared: dict[str, Pending] = {}
        self.conns: list[socket.socket] = []
        self.pause_pid = 0
        self.pause_alive = False
        self.pid_namespace = -1  # the pause's PID namespace, held from the moment it was made
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # --- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        set_handler(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            set_handler(sig, IGNORE)  # ended only by a shutdown request: it owns a pod
        inode = os.stat(self.path).st_ino
        while not (self.stopping and self.idle()):
            self.step()
        sockpath.remove_if_ours(self.path, inode)
        log.info("pod monitor %d of sandbox %s exiting", os.getpid(), self.id[:12])

    def step(self, longest: float | None = None) -> None:
        """One turn of the loop: waits (at most ``longest`` seconds, if given) for what is due or
        readable, and handles it."""
        waits: list[int | socket.socket] = [self.listener, self.wake_r, *self.conns,
                                            *(p.report for p in self.pending), *self.watcher.fds()]
        timeout = self._timeout()
        if longest is not None:
            timeout = longest if timeout is None else min(timeout, longest)
        for r in wait_readable(waits, timeout):
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

    def idle(self) -> bool:
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
            what = p.container or "pause"
            self._give_up(p, protocol.error_message(DeadlineExceeded(
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
        if op == "attach":
            try:
                self._attach(str(message.get("id")), message.get("streams", []), fds)
            except BaseException:
                for fd in fds:
                    os.close(fd)
                raise
            return {}
        if fds:
            raise InvalidArgument(f"request {op!r} takes no file descriptors")
        if op == "discard":
            self._discard(str(message.get("id")))
            return {}
        if self.stopping and op in ("pause", "start", "prepare"):
            raise FailedPrecondition(f"sandbox {self.id} is stopping")
        if op == "pause":
            self._pause(conn, message["spec"])
            return None
        if op in ("start", "prepare"):
            self._start(conn, message["spec"], float(message.get("timeout") or START_TIMEOUT), op == "prepare")
            return None
        if op == "resize":
            watched = self._running(str(message.get("id")))
            if not watched.stdin.terminal:
                raise FailedPrecondition(f"container {watched.id} has no terminal to resize")
            set_window(watched.stdin.fd, int(message["rows"]), int(message["columns"]))
            return {}
        if op == "reopen":
            self._running(str(message.get("id"))).log.reopen()
            return {}
        if op == "shutdown":
            self._stop_everything()
            return {}
        if op == "upgrade":
            self._upgrade(conn, *handover.check_target(message.get("argv"), message.get("env", {})))
        raise InvalidArgument(f"unknown request {op!r}")

    def _reported(self, p: Pending) -> None:
        if p.pause is not None:
            self._pause_synced(p, p.pause)
            return
        if p.watch is not None:
            self._init_said(p, p.watch)
            return
        try:
            message, fds = protocol.receive(p.report)
        except (OSError, ValueError) as e:
            message, fds = {"error": f"reading its report: {e}"}, []
        if message is None:
            message = {"error": f"{p.kind} helper {p.pid} exited without a report"}
        if "error" in message:
            for fd in fds:
                os.close(fd)
            self._give_up(p, message)
            return
        self._started(p, message, fds)

    def _init_said(self, p: Pending, watch: InitWatch) -> None:
        """What init sent so far: on with its set-up, held (a prepare is answered), exec'd (the
        start is answered and init watched as the container), or failed (init is ended and the
        failure answered)."""
        try:
            step = watch.read(p.report)
        except Exception as e:  # noqa: BLE001 - init's failure, or ours, is the start's answer
            self._give_up(p, protocol.error_message(e))
            return
        if step == CREATED:
            marks, watch.marks = watch.marks, []
            self._started(p, {"pid": p.pid, "created": True, "marks": marks}, [])
        elif step == EXECED:
            terminal = watch.take_terminal()
            self._started(p, {"pid": p.pid, "started_at": time.time_ns(), "user": watch.user, "marks": watch.marks},
                          [terminal] if terminal >= 0 else [])

    def _started(self, p: Pending, message: dict[str, Any], fds: list[int]) -> None:
        """A start is done (or a prepare set up): the agent is answered ``message``, and the
        container recorded (``fds``: its terminal) or held."""
        message["marks"] = [("monitor.request", p.asked_at), *message.get("marks", ()),
                            ("monitor.report", time.monotonic())]
        if p.kind == "prepare":
            for fd in fds:
                os.close(fd)
            self.prepared[p.container] = p
            self._answer(p, message, done=False)
            return
        assert p.log is not None
        if p.tty and fds:  # the terminal init made: its only output, and its input
            p.pipes, p.stdin = {fds[0]: b"stdout"}, Stdin(fds[0], terminal=True, once=p.stdin_once)
        watched = self.watcher.adopt(p.container, int(message["pid"]), p.exit_file, p.log, p.pipes,
                                     stdin=p.stdin)
        p.log, p.pipes, p.stdin = None, {}, Stdin()
        status = self.children.exited_early(watched.pid)
        if status is not None:
            self.watcher.exited(watched.pid, status)
        self._answer(p, message)

    def _pause_synced(self, p: Pending, set_up: PauseSetUp) -> None:
        """The pause's sync socket is readable: its set-up goes on, failed, or is done."""
        try:
            if not read_sync(p.report, set_up):
                return  # READY: the EOF of its exec is to come
        except RuntimeError as e:
            self._give_up(p, protocol.error_message(e))
            return
        if self.children.exited_early(p.pid) is not None:  # it died after its exec, reaped already
            self._answer(p, protocol.error_message(RuntimeError("pause set-up failed: it exited at once")))
            return
        # Not reaped yet, so alive as far as this loop knows; a death now comes to _reap as pause_pid's.
        self.pause_pid, self.pid_namespace, self.pause_alive = p.pid, set_up.take_namespace(), True
        self._answer(p, {"pid": p.pid, "start_time": set_up.start_time})

    def _answer(self, p: Pending, message: dict[str, Any], done: bool = True) -> None:
        """``done`` False: a prepared start, whose init and pipes stay held for its start (_go)."""
        self.pending.remove(p)
        try:
            protocol.send(p.reply, message)
        except OSError:
            pass  # the agent gave up waiting; what was started stays recorded here
        if done:
            p.close()
        else:
            p.reply.close()

    def _give_up(self, p: Pending, message: dict[str, Any]) -> None:
        """Answers a start or pause that failed, after killing what it left: init's session (its
        exit reaped unreported), a restore's starter's process group, or the pause (PID 1: its
        namespace goes with it), whose exit is then reaped unreported."""
        if p.pause is not None:
            abandon(self.children, p.pid)
        else:
            self._end(p)
        self._answer(p, message)

    def _stop_everything(self) -> None:
        self.stopping = True
        self._drop_prepared()
        for p in self.pending:  # each is answered when its report or sync socket sees the end
            if p.pause is not None:
                self.children.kill(p.pid)
            else:
                self._end(p)
        for pid in [*self.watcher.running().values(), *((self.pause_pid,) if self.pause_alive else ())]:
            self.children.kill(pid)

    def _drop_prepared(self) -> None:
        for container in list(self.prepared):
            self._discard(container)

    def _upgrade(self, conn: socket.socket, argv: list[str], env: dict[str, str]) -> NoReturn:
        if self.pending or self.conns:
            raise Unavailable(f"sandbox {self.id}: busy ({len(self.pending)} starts); try again")
        self.watcher.drop_clients()  # attach sessions end; the new code takes new ones
        self._drop_prepared()  # their starts will set them up again, in the new code
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
