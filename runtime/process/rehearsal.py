"""A pod monitor's work, rehearsed in the fork server before it freezes its heap.

Every pod monitor is a fork of the fork server and keeps privately each page it writes. Python
3.11 writes to a function's code object while it warms up and specialises its bytecode, and fills
the interpreter's attribute caches on first use: done once here, in the process every monitor is
forked from, those writes are shared instead of repeated in each monitor (hack/bench/pods.sh:
about 0.17 MiB less per pod with a container). The rehearsal drives a throw-away PodMonitor
through the turns of its loop that every pod takes: an agent's request on its socket, a start (the
fork of init, here one that fails at once, and its report), a container init's messages until it
exec'd (half of them held as CreateContainer has them, then let go by a start), its output into a
log and its exit into an exit file, and a pause's READY. It touches only a directory of its own,
which it removes, and the children it forks and reaps.
"""
from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import time
from collections.abc import Callable

from runtime.errors import Internal
from runtime.process import protocol, sockpath
from runtime.process.children import bare_fork
from runtime.process.initspec import HOST
from runtime.process.initwatch import InitWatch
from runtime.process.monitor import LogFile, open_log
from runtime.process.pausestart import PauseSetUp
from runtime.process.podmonitor import PodMonitor
from runtime.process.podrequests import Pending
from runtime.process.stdio import container_stdio

ROUNDS = 24  # enough for CPython 3.11 to specialise what runs (it waits for 8 calls or loops)
FORKS = 8  # of them with a fork of init (a few ms each): enough for its code to be quickened
TURNS = 50  # a bound on one round's turns of the loop (it takes about 4)
LONGEST_WAIT = 2.0  # seconds; every wait here ends at once unless something is broken


def rehearse(directory: str) -> None:
    """Runs the rehearsal in ``directory`` (made, then removed with whatever it holds)."""
    shutil.rmtree(directory, ignore_errors=True)  # a rehearsal an earlier crash cut short
    os.makedirs(directory, mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    monitor = PodMonitor("rehearsal", os.path.join(directory, "monitor.sock"), listener)
    try:
        sockpath.listen_on(listener, monitor.path)
        for turn in range(ROUNDS):
            _ping(monitor)
            if turn < FORKS:
                _failed_start(monitor)
            _container(monitor, directory, prepared=turn % 2 == 0)
            _pause(monitor)
    finally:
        for pending in monitor.pending:
            pending.close()
        for conn in monitor.conns:
            conn.close()
        listener.close()
        os.close(monitor.wake_r)
        os.close(monitor.wake_w)
        shutil.rmtree(directory, ignore_errors=True)
    del monitor
    gc.collect()  # the rehearsal's garbage, before the heap is frozen


def _ping(monitor: PodMonitor) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as agent:
        sockpath.connect(agent, monitor.path)
        protocol.send(agent, {"op": "ping"})
        _turn_until(monitor, lambda: _readable(agent))
        protocol.receive(agent)


def _failed_start(monitor: PodMonitor) -> None:
    """A start as the agent asks for one, of an init that fails at once (its spec has no command),
    in a new PID namespace as most are (the host's where we may not make one)."""
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with agent:
        spec = {"id": "rehearsal", "namespaces": {"pid": "" if os.geteuid() == 0 else HOST}}
        monitor._start(reply, spec, LONGEST_WAIT)
        init = monitor.pending[-1].pid
        _turn_until(monitor, lambda: not monitor.pending)
        protocol.receive(agent)
    # Until the loop has reaped this init (no SIGCHLD wakes it here). Only this one: a fork server
    # re-exec'd by an upgrade rehearses with the pods' monitors as its children, which stay.
    with contextlib.suppress(ChildProcessError):  # reaped already
        os.waitid(os.P_PID, init, os.WEXITED | os.WNOWAIT)
        monitor.step(0)


def _container(monitor: PodMonitor, directory: str, prepared: bool) -> None:
    """A container as its init sets it up: "ready", EOF as at execve, then output, exit and exit
    file; ``prepared``: as CreateContainer then StartContainer have it, "created" first, and the
    start lets it go. (The init here is played on its socket; the child only exits.)"""
    stdio, ours = container_stdio(tty=False, stdin=False, stdin_once=False)
    log = LogFile("", open_log(""), os.path.join(directory, "log-dropped"))
    pid = bare_fork()
    if pid == 0:
        os._exit(0)
    sync, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sync.setblocking(False)
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with agent:
        monitor.pending.append(Pending("prepare" if prepared else "start", pid, sync, reply, time.monotonic() + 60,
                                       "rehearsal", os.path.join(directory, "exit"), log=log, pipes=ours.outputs,
                                       stdin=ours.stdin, asked_at=time.monotonic(), watch=InitWatch(hold=prepared)))
        started = _start_prepared(monitor, init, agent) if prepared else agent
        init.send(protocol.ready(0, 0, (), [("init.security", time.monotonic())]))
        init.close()
        _turn_until(monitor, lambda: not monitor.pending)
        protocol.receive(started)
        started.close()
    os.write(stdio[1], b"a line\nand another\n")
    for fd in stdio:
        os.close(fd)
    _turn_until(monitor, monitor.watcher.empty)


def _start_prepared(monitor: PodMonitor, init: socket.socket, agent: socket.socket) -> socket.socket:
    """The prepared init says "created" and the prepare is answered on ``agent``; then a start
    request lets it go: (the agent's end of that start)."""
    init.send(protocol.created([("init.rootfs", time.monotonic())]))
    _turn_until(monitor, lambda: not monitor.pending)
    protocol.receive(agent)
    reply, started = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    monitor._start(reply, {"id": "rehearsal"}, LONGEST_WAIT)
    init.recv(protocol.MAX_MESSAGE)  # "go"
    return started


def _pause(monitor: PodMonitor) -> None:
    """A pause's READY as its monitor hears it (the pause forked here, in this PID namespace, and
    reaped here once the monitor has forgotten it again)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = bare_fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # until the turn is over
        os._exit(0)
    os.close(r)
    sync, pause = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    reply, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with pause, agent:
        namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        monitor.pending.append(Pending("pause", pid, sync, reply, time.monotonic() + 60,
                                       pause=PauseSetUp(namespace, execs=False)))
        pause.send(protocol.pause_ready(0))
        _turn_until(monitor, lambda: not monitor.pending)
        protocol.receive(agent)
    os.close(monitor.pid_namespace)
    monitor.pause_pid, monitor.pause_alive, monitor.pid_namespace = 0, False, -1
    os.close(w)
    os.waitpid(pid, 0)


def _turn_until(monitor: PodMonitor, done: Callable[[], bool]) -> None:
    for _ in range(TURNS):
        if done():
            return
        monitor.step(LONGEST_WAIT)
    raise Internal(f"fork server rehearsal: a pod monitor's loop did not get there in {TURNS} turns")


def _readable(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    return True
