"""The fork server: a single-threaded, long-lived subreaper that forks every process pycrid runs.

The agent is multi-threaded (gRPC), and forking it is unsafe and slow; a fresh interpreter per
container costs ~70 ms. This process imports the child code once, freezes its heap (gc.freeze) so
children share its pages copy-on-write, and forks in ~1 ms. It runs in its own session, outlives
agent restarts (the agent reconnects to its socket), and as PR_SET_CHILD_SUBREAPER it reaps every
process of its tree, including orphans, so nothing pycrid started becomes a zombie.

Run as: python -m runtime.process.forkserver SOCKET [--target NAME=module:function ...]
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
from runtime.linux.poll import wait_readable
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import protocol
from runtime.process.client import SERVER_ENV
from runtime.process.monitor import Monitors
from runtime.process.targets import TARGETS

Target = Callable[[dict[str, Any], list[int]], int]
log = logging.getLogger("pycrid.forkserver")


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


def listen(path: str) -> socket.socket:
    tmp = f"{path}.{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.bind(tmp)
    os.chmod(tmp, 0o600)
    sock.listen(64)
    os.rename(tmp, path)  # replaces a stale socket atomically; only one server can win a start race
    return sock


def reap(monitors: Monitors) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        monitors.exited(pid, status)


def spawn(kind: str, target: Target, spec: dict[str, Any], fds: list[int], server_fds: list[int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Children share the fork server's command line; the name tells ps and tests apart.
            with open("/proc/self/comm", "w") as comm:
                comm.write(f"pycrid-{kind}"[:15])
            signal.set_wakeup_fd(-1)
            for fd in server_fds:
                os.close(fd)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            os.setsid()
            code = target(spec, fds)
        except BaseException:  # noqa: BLE001 - a child must never return into the server loop
            log.exception("child %s failed", spec.get("id", ""))
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    return pid


def handle(conn: socket.socket, targets: dict[str, Target], server_fds: list[int], monitors: Monitors) -> bool:
    """Serves one request; False when the server should exit."""
    message, fds = protocol.receive(conn)
    if message is None:
        return True
    op = message.get("op")
    if op == "spawn" and message.get("kind") in targets:
        kind = message["kind"]
        pid = spawn(kind, targets[kind], message.get("spec", {}), fds, server_fds + monitors.fds())
        protocol.send(conn, {"pid": pid})
        return True
    if op == "adopt" and len(fds) == len(message.get("streams", ())):
        monitors.adopt(int(message["pid"]), message["exit_file"], message["log_path"],
                       {fd: s.encode() for fd, s in zip(fds, message["streams"])})
        protocol.send(conn, {"pid": os.getpid()})
        return True
    if op == "reopen":
        protocol.send(conn, {"reopened": monitors.reopen(int(message["pid"]))})
        return True
    for fd in fds:
        os.close(fd)
    if op in ("ping", "shutdown"):
        protocol.send(conn, {"pid": os.getpid()})
        return op == "ping"
    protocol.send(conn, {"error": f"unknown request {op!r} kind {message.get('kind')!r}"})
    return True


def serve(path: str, targets: dict[str, Target]) -> None:
    LinuxSyscalls().prctl(k.PR_SET_CHILD_SUBREAPER, 1)
    listener = listen(path)
    ours = os.stat(path).st_ino
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped only by an explicit shutdown request
    os.environ[SERVER_ENV] = path
    monitors = Monitors()
    gc.freeze()
    log.info("fork server %d listening on %s", os.getpid(), path)
    conns: list[socket.socket] = []
    running = True
    while running:
        readable = wait_readable([listener, wake_r, *conns, *monitors.fds()], monitors.timeout())
        for r in readable:
            if r == wake_r:
                os.read(wake_r, 4096)
                reap(monitors)
            elif r == listener:
                conns.append(listener.accept()[0])
            elif isinstance(r, int):
                monitors.readable(r)
            else:
                try:
                    server_fds = [listener.fileno(), wake_r, wake_w, *(c.fileno() for c in conns)]
                    running = handle(r, targets, server_fds, monitors) and running
                except (OSError, ValueError) as e:
                    log.warning("dropping a client: %s", e)
                conns.remove(r)
                r.close()
        reap(monitors)
        monitors.expire()
    # Remove the socket only if it is still ours, not a successor's.
    if os.path.exists(path) and os.stat(path).st_ino == ours:
        os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pycrid-forkserver")
    parser.add_argument("socket")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=module:function")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r")
    serve(args.socket, load_targets(args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
