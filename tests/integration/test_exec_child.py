"""The exec child (runtime/process/exec.py) on the real kernel, where a test of the whole pod
cannot time it: the container's init dies while the exec is being set up."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from runtime.process import protocol
from runtime.process.exec import run_exec
from runtime.process.execspec import ExecSpec
from runtime.store.codec import encode


def dead_pid_namespace() -> int:
    """A descriptor of a PID namespace whose init has exited (and been reaped)."""
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "sleep", "1000"])
    try:
        deadline = time.monotonic() + 5
        while not (inits := _children(holder.pid)):
            assert time.monotonic() < deadline, "unshare did not fork its child"
            time.sleep(0.01)
        fd = os.open(f"/proc/{inits[0]}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        os.kill(inits[0], signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    return fd


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_an_exec_into_a_namespace_whose_init_died_is_a_failed_precondition() -> None:
    namespace = dead_pid_namespace()
    spec = ExecSpec(id="c1", target_pid=1, args=("true",), env=(), cwd="/", uid=0, gid=0, groups=(),
                    capabilities=(), ambient_capabilities=(), no_new_privs=True, seccomp="Unconfined",
                    seccomp_profile="", cgroup="")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        child = os.fork()
        if child == 0:  # run_exec joins the namespace and leads a session: not in the test process
            ours.close()
            os._exit(run_exec(encode(spec), {"pid": namespace}, theirs, (null, null, null)))
        theirs.close()
        _, status = os.waitpid(child, 0)
        message, _ = protocol.receive(ours)
    finally:
        ours.close()
        os.close(null)
        os.close(namespace)
    assert os.waitstatus_to_exitcode(status) == 1
    assert message is not None
    assert message.get("error_class") == "FailedPrecondition", message
    assert "PID namespace has no init" in message["error"]
