"""The fork server forked from a starting agent (runtime/process/forkedstart.py): it looks and
behaves as an exec'd one and outlives the process that forked it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.linux import proc
from runtime.process.client import ForkServer

ROOT = Path(__file__).resolve().parents[2]
# A stand-in for `pycrid serve` at start: forks the server, tries again (one answers now), then
# waits to be killed.
STARTER = """
import sys, time
from runtime.process.forkedstart import fork_server
first = fork_server(sys.argv[1], sys.argv[2])
again = fork_server(sys.argv[1], sys.argv[2])
print(first.process.pid if first and first.process else None, again, flush=True)
time.sleep(60)
"""


def test_the_forked_fork_server_is_named_detached_and_outlives_its_agent(tmp_path: Path) -> None:
    path, log = str(tmp_path / "forkserver.sock"), str(tmp_path / "forkserver.log")
    starter = subprocess.Popen([sys.executable, "-c", STARTER, path, log], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    server = ForkServer(path)
    try:
        assert starter.stdout is not None
        first, again = starter.stdout.readline().split()
        pid = int(first)
        assert again == "None", "a second start forked another server beside the one answering"
        assert server.ping() == pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode().strip()
        assert cmdline == f"{sys.executable} -m runtime.process.forkserver {path}"
        stat = proc.read_stat(pid)
        assert stat is not None and stat.comm == "pycrid-forkserv" and stat.ppid == starter.pid
        assert os.getsid(pid) == pid
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert os.readlink(f"/proc/{pid}/fd/1") == log
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        assert server.ping() == pid
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        server.shutdown()
    deadline = time.monotonic() + 5
    while not exited(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exited(pid)


def exited(pid: int) -> bool:
    """Gone, or a zombie: an orphan's exit waits for init, which reaps only now and then."""
    stat = proc.read_stat(pid)
    return stat is None or stat.state in ("Z", "X")
