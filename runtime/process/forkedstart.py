"""The agent's first fork server, forked from the agent as it starts instead of exec'd.

An exec'd fork server holds its own interpreter heap, standard library and runtime modules (~12
MiB anonymous), much the same the agent holds. Forked from the agent before grpc and the agent's
own code are imported (one thread, no gRPC state, gc.freeze() first so neither collector writes to
the shared objects), the two processes share those pages copy-on-write and PSS counts them once.
The server is otherwise as an exec'd one (client.start): its own session, a subreaper, its log
file on stdout and stderr, a helper's environment and the command line tools look for. The
agent's later starts (after a fork server died) and upgrades exec as before: by then it runs
threads.
"""
from __future__ import annotations

import gc
import os
import socket
import subprocess
import threading
import time

from runtime.errors import Unavailable
from runtime.linux import proctitle
from runtime.process import forkserver, sockpath
from runtime.process.build import build_id
from runtime.process.children import close_except
from runtime.process.client import ForkServer, helper_argv


class ForkedChild:
    """What the agent needs of subprocess.Popen for a child it forked itself: reaping it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"fork server {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code


def fork_server(path: str, log_path: str) -> ForkServer | None:
    """A new fork server at ``path`` forked from this process; None when one already answers
    there (the agent reconnects to it, upgrading it if need be), when this process runs threads
    (forking it is unsafe) or when the command line would not fit (the exec'd start is used)."""
    argv, env = helper_argv("runtime.process.forkserver", path)
    if threading.active_count() > 1 or not proctitle.title_fits(argv):
        return None
    try:
        ForkServer(path).ping()
        return None
    except Unavailable:
        pass
    targets = forkserver.load_targets([])
    build_id()  # computed once here, for both
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    listener = sockpath.listen(path)  # bound before the fork: the agent's first request waits for it
    gc.collect()
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _become_server(path, targets, listener, log, argv, env)
            code = 0
        except BaseException:  # noqa: BLE001 - never return into the agent's code
            forkserver.log.exception("the forked fork server failed")
        finally:
            os._exit(code)
    listener.close()
    os.close(log)
    return ForkServer(path, ForkedChild(pid))


def _become_server(path: str, targets: dict[str, forkserver.Target], listener: socket.socket, log: int,
                   argv: list[str], env: dict[str, str]) -> None:
    os.setsid()
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    close_except([listener.fileno()])
    proctitle.rewrite_cmdline(argv, env)
    forkserver.configure_logging()
    forkserver.run(forkserver.Server(path, targets, listener))
