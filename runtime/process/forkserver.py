"""The fork server: a single-threaded, long-lived subreaper that forks pycrid's helper processes.

The agent is multi-threaded (gRPC), and forking it is unsafe and slow; a fresh interpreter per
process costs ~70 ms and ~7 MB. This process imports the helpers' code once, freezes its heap
(gc.freeze) so children share its pages copy-on-write, and forks in ~1 ms: one pod monitor per pod
(runtime/process/podmonitor.py) and one child per image layer being unpacked. It holds no state of
its own, so its death loses nothing that runs: the agent restarts it, and the monitors it forked
carry on (PID 1 becomes their parent until they exit). It runs in its own session, outlives agent
restarts, and as PR_SET_CHILD_SUBREAPER reaps every process of its tree that loses its parent.

Run as: python -m runtime.process.forkserver SOCKET [--target NAME=module:function ...] [--resume FD]
"""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from runtime.linux import constants as k
from runtime.linux import seccomp
from runtime.linux.poll import wait_readable
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import handover, protocol, sockpath
from runtime.process.build import build_id
from runtime.process.children import DEFAULT, bare_fork, has_children, set_comm, set_handler
from runtime.process.rehearsal import rehearse
from runtime.process.targets import TARGETS

Target = Callable[[dict[str, Any], list[int]], int]
log = logging.getLogger("pycrid.forkserver")
COMM = b"pycrid-forkserv"
REHEARSAL_DIR = "forkserver-rehearsal"  # beside the socket; removed once done


def load_targets(extra: list[str]) -> dict[str, Target]:
    table = dict(TARGETS)
    for item in extra:
        name, _, ref = item.partition("=")
        table[name] = ref
    loaded: dict[str, Target] = {}
    for name, ref in table.items():
        module, _, function = ref.partition(":")
        loaded[name] = getattr(importlib.import_module(module), function)
    return loaded


def spawn(kind: str, target: Target, spec: dict[str, Any], fds: list[int], server_fds: list[int]) -> int:
    pid = bare_fork()
    if pid == 0:
        code = 1
        try:
            set_comm(f"pycrid-{kind}".encode())
            signal.set_wakeup_fd(-1)
            for fd in server_fds:
                os.close(fd)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                set_handler(sig, DEFAULT)
            os.setsid()
            code = target(spec, fds)
        except BaseException:  # noqa: BLE001 - a child must never return into the server loop
            log.exception("child %s failed", spec.get("id", ""))
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    return pid


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Server:
    def __init__(self, path: str, targets: dict[str, Target], listener: socket.socket, linger: bool = False) -> None:
        self.path = path
        self.targets = targets
        self.listener = listener
        self.linger = linger  # the agent stopped: exit once the last child is gone
        self.running = True
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.conns: list[socket.socket] = []

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped only by an explicit request
        # Every container start and exec loads it before entering the container's root: loaded
        # once here, it is already there in each of them (~0.5 ms of every exec before).
        seccomp.preload()
        self._rehearse()
        gc.freeze()
        ours = os.stat(self.path).st_ino
        log.info("fork server %d (build %s) listening on %s", os.getpid(), build_id(), self.path)
        while self.running and not (self.linger and not has_children()):
            waits: list[int | socket.socket] = [self.listener, self.wake_r, *self.conns]
            for r in wait_readable(waits, None):
                if r == self.wake_r:
                    os.read(self.wake_r, 4096)
                elif r is self.listener:
                    self.conns.append(self.listener.accept()[0])
                elif isinstance(r, socket.socket):
                    self._serve_one(r)
            reap()
        sockpath.remove_if_ours(self.path, ours)
        log.info("fork server %d exiting", os.getpid())

    def _rehearse(self) -> None:
        """Warms the pod monitor's code here, once for all monitors (runtime/process/rehearsal.py).
        A failure costs each monitor some memory, nothing else."""
        try:
            rehearse(os.path.join(os.path.dirname(self.path), REHEARSAL_DIR))
        except Exception as e:  # noqa: BLE001 - the server must come up regardless
            log.warning("the pod monitor rehearsal failed (each monitor will use more memory): %s", e)

    def _serve_one(self, conn: socket.socket) -> None:
        self.conns.remove(conn)
        with conn:
            try:
                message, fds = protocol.receive(conn)
                if message is not None:
                    self._handle(conn, message, fds)
            except Exception as e:  # noqa: BLE001 - one bad client must not stop the server
                log.warning("dropping a client: %s", e)
                try:
                    protocol.send(conn, protocol.error_message(e))
                except OSError:
                    pass

    def _server_fds(self) -> list[int]:
        return [self.listener.fileno(), self.wake_r, self.wake_w, *(c.fileno() for c in self.conns)]

    def _handle(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "spawn" and message.get("kind") in self.targets and fds:
            kind = str(message["kind"])
            pid = spawn(kind, self.targets[kind], message.get("spec", {}), fds,
                        self._server_fds() + [conn.fileno()])
            protocol.send(conn, {"pid": pid})
            return
        for fd in fds:
            os.close(fd)
        if op in ("ping", "attach"):
            self.linger = self.linger and op == "ping"
            protocol.send(conn, {"pid": os.getpid(), "build": build_id(), "protocol": protocol.PROTOCOL})
        elif op == "linger":
            self.linger = True
            protocol.send(conn, {"pid": os.getpid()})
        elif op == "shutdown":
            self.running = False
            protocol.send(conn, {"pid": os.getpid()})
        elif op == "upgrade":
            argv, env = handover.check_target(message.get("argv"), message.get("env", {}))
            protocol.send(conn, {"pid": os.getpid()})
            self._upgrade(argv, env)
        else:
            protocol.send(conn, {"error": f"unknown request {op!r} kind {message.get('kind')!r}"})

    def _upgrade(self, argv: list[str], env: dict[str, str]) -> None:
        """Becomes the new build in place: same pid (so still every child's parent), same listener
        (so a client connecting meanwhile waits instead of failing)."""
        log.info("fork server %d: re-exec into %s", os.getpid(), " ".join(argv))
        for conn in self.conns:
            conn.close()
        handover.exec_with_state(argv, env, {"listener": self.listener.fileno(), "linger": self.linger},
                                 [self.listener.fileno()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pycrid-forkserver")
    parser.add_argument("socket")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=module:function")
    parser.add_argument("--resume", type=int, help="a previous build's state (an upgrade)")
    args = parser.parse_args(argv)
    configure_logging()
    targets = load_targets(args.target)
    build_id()  # the code as imported now, before anyone can change the files under us
    if args.resume is not None:
        state = handover.read_state(args.resume)
        listener = socket.socket(fileno=int(state["listener"]))
        handover.restore_cloexec([listener.fileno()])
        run(Server(args.socket, targets, listener, linger=bool(state.get("linger"))))
    else:
        run(Server(args.socket, targets, sockpath.listen(args.socket)))
    return 0


def configure_logging() -> None:
    """To stderr (the fork server's log file), replacing any handler a forking agent left."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r")


def run(server: Server) -> None:
    """Serves as the fork server: named for ps, the subreaper of everything it forks."""
    set_comm(COMM)
    LinuxSyscalls().prctl(k.PR_SET_CHILD_SUBREAPER, 1)
    server.serve()


if __name__ == "__main__":
    sys.exit(main())
