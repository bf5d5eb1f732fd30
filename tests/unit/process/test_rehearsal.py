"""The fork server's rehearsal of a pod monitor's work (runtime/process/rehearsal.py): it leaves
the monitor's loop specialised in the process monitors are forked from, and nothing else behind.
Each check runs in a fresh interpreter, so no other test has warmed the code first."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.process import forkserver, sockpath

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import dis, json, os, sys
from runtime.process.initwatch import InitWatch
from runtime.process.monitor import Watcher
from runtime.process.pidnsfork import fork_in
from runtime.process.podmonitor import PodMonitor
from runtime.process.rehearsal import rehearse

def specialised(function):
    plain = {i.opname for i in dis.get_instructions(function)}
    return sorted({i.opname for i in dis.get_instructions(function, adaptive=True)} - plain)

hot = (PodMonitor.step, Watcher.readable, Watcher.adopt, PodMonitor._init_said, InitWatch.take,
       PodMonitor._fork_init, fork_in, PodMonitor._go)
before = [specialised(f) for f in hot]
fds = sorted(os.listdir("/proc/self/fd"))
if sys.argv[2] == "run":
    rehearse(sys.argv[1])
try:
    os.waitpid(-1, os.WNOHANG)
    children = True
except ChildProcessError:
    children = False
print(json.dumps({"before": before, "after": [specialised(f) for f in hot],
                  "fds_kept": sorted(os.listdir("/proc/self/fd")) == fds, "children": children,
                  "left": os.path.exists(sys.argv[1])}))
"""


def probe(directory: Path, what: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(directory), what], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_rehearsal_specialises_the_monitor_loop_before_any_monitor_is_forked(tmp_path: Path) -> None:
    result = probe(tmp_path / "rehearsal", "run")
    assert result["before"] == [[]] * 8
    after = result["after"]
    assert isinstance(after, list) and all(after), after
    # A prepared start's (CreateContainer then StartContainer): _go past its lookup, which every
    # start does, to where it lets the held init go.
    assert "STORE_ATTR_INSTANCE_VALUE" in after[7], after[7]


def test_without_it_nothing_is_specialised(tmp_path: Path) -> None:
    """The probe can fail: code that never ran stays as compiled."""
    result = probe(tmp_path / "rehearsal", "skip")
    assert result["after"] == [[]] * 8


def test_the_rehearsal_leaves_no_descriptor_child_or_file(tmp_path: Path) -> None:
    directory = tmp_path / "rehearsal"
    directory.mkdir()
    (directory / "stale").write_text("an earlier rehearsal cut short")
    result = probe(directory, "run")
    assert result["fds_kept"] is True
    assert result["children"] is False
    assert result["left"] is False


def test_a_failed_rehearsal_costs_the_fork_server_nothing_but_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(directory: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(forkserver, "rehearse", broken)
    listener = sockpath.listen(str(tmp_path / "forkserver.sock"))
    server = forkserver.Server(str(tmp_path / "forkserver.sock"), {}, listener)
    try:
        server._rehearse()
    finally:
        listener.close()
        os.close(server.wake_r)
        os.close(server.wake_w)
    assert "rehearsal failed" in caplog.text and "No space left" in caplog.text


def test_a_fork_server_with_children_that_stay_rehearses_to_its_end(tmp_path: Path) -> None:
    """As one re-exec'd by an upgrade does, with the pods' monitors as its children: the rehearsal
    waits for its own children only (waiting for any would wait on the monitors for ever)."""
    script = ("import subprocess, sys\n"
              "from runtime.process.rehearsal import rehearse\n"
              "monitor = subprocess.Popen(['sleep', '60'])\n"
              "for _ in range(3):\n"
              "    rehearse(sys.argv[1])\n"
              "assert monitor.poll() is None\n"
              "monitor.kill()\n"
              "monitor.wait()\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "rehearsal")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
