"""A newer pycrid takes over from the helpers an older one left running (issue 11): the fork server
and every pod monitor re-exec into the new build in place (same pids), no container is lost or
restarted, logs keep flowing, exits keep their codes, and the new init code is what starts the next
container, without a node reboot.

The "older build" is a copy of this checkout with another protocol number and an init that marks
the environment of the containers it starts, so the test can tell which code started which."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from runtime.process.build import build_id
from runtime.process.client import ForkServer
from runtime.process.monitorclient import PodMonitor
from tests.e2e import leaks
from tests.e2e.daemon import REPO, Daemon, crictl, start
from tests.e2e.workloads import CONTAINER_NS, POD_NS, Pods, container_config, container_pid, pod_config, unique

TICKER = "trap 'exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"
OLD_MARK = "PYCRID_TEST_BUILD=old"


def old_build(dest: Path) -> Path:
    for package in ("cri", "runtime", "metrics"):
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    protocol = dest / "runtime" / "process" / "protocol.py"
    text = protocol.read_text()
    assert "\nPROTOCOL = 2" in text
    protocol.write_text(text.replace("\nPROTOCOL = 2", "\nPROTOCOL = 1"))
    init = dest / "runtime" / "process" / "init.py"
    text = init.read_text()
    marked = text.replace("    extra = []\n", f"    extra = [{OLD_MARK!r}]\n", 1)
    assert marked != text, "the old build's init could not be marked"
    init.write_text(marked)
    return dest


def env_of(daemon: Daemon, container: str) -> list[str]:
    """The environment the container's init was started with (what its init code gave it)."""
    environ = Path(f"/proc/{container_pid(daemon, container)}/environ").read_bytes()
    return [entry.decode() for entry in environ.split(b"\0") if entry]


def monitor(daemon: Daemon, pod: str) -> PodMonitor:
    return PodMonitor(pod, str(daemon.state / "sandboxes" / pod / "monitor.sock"))


def log_size(daemon: Daemon, container: str) -> int:
    return Path(json.loads(crictl(daemon, "inspect", container).stdout)["status"]["logPath"]).stat().st_size


def wait_for(what: str, predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def test_a_newer_build_takes_over_running_helpers_without_losing_a_container(registry: str, tmp_path: Path) -> None:
    old = old_build(tmp_path / "old-build")
    base = tmp_path / "pycrid"
    daemon = start(base, registry, source=old)
    (tmp_path / "work").mkdir()
    pods = Pods(daemon, tmp_path / "work")
    try:
        crictl(daemon, "pull", "busybox:1")
        made = []
        for n, pid_mode in enumerate((POD_NS, CONTAINER_NS, POD_NS)):
            pod, path = pods.run(pod_config(unique(f"upgrade{n}"), pods.log_dir, pid=pid_mode))
            made.append((pod, path, pods.create(pod, path, container_config("tick", ["sh", "-c", TICKER],
                                                                            pid=pid_mode))))
        assert OLD_MARK in env_of(daemon, made[0][2])
        server = ForkServer(str(daemon.state / "forkserver.sock"))
        server_pid = server.ping()
        assert server.hello()["build"] != build_id() and server.hello()["protocol"] == 1
        monitors = {pod: monitor(daemon, pod).ping()["pid"] for pod, _, _ in made}
        pids = {ctr: container_pid(daemon, ctr) for _, _, ctr in made}
        sizes = {ctr: log_size(daemon, ctr) for _, _, ctr in made}

        assert daemon.stop() == 0  # the old agent goes; its helpers stay for the pods
        daemon = start(base, registry)  # this checkout: the newer build
        pods.daemon = daemon

        hello = server.hello()
        assert (hello["pid"], hello["build"], hello["protocol"]) == (server_pid, build_id(), 2)
        assert f"PYTHONPATH={REPO}".encode() in Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
        for pod, pid in monitors.items():
            wait_for(f"the monitor of {pod} on the new build",
                     lambda pod=pod: monitor(daemon, pod).ping()["build"] == build_id(), timeout=15)
            assert monitor(daemon, pod).ping()["pid"] == pid, "the monitor was replaced, not re-exec'd"
        for _, _, ctr in made:
            assert container_pid(daemon, ctr) == pids[ctr]
            wait_for(f"the log of {ctr} growing", lambda ctr=ctr: log_size(daemon, ctr) > sizes[ctr], timeout=5)

        # The next container of an old pod is started by the new init code.
        pod, path, old_ctr = made[0]
        new_ctr = pods.create(pod, path, container_config("next", ["sleep", "300"], pid=POD_NS))
        assert OLD_MARK not in env_of(daemon, new_ctr)
        assert OLD_MARK in env_of(daemon, old_ctr)
        assert crictl(daemon, "exec", "-s", old_ctr, "echo", "reached").stdout.strip() == "reached"
        crictl(daemon, "stop", "--timeout", "10", old_ctr)
        status = json.loads(crictl(daemon, "inspect", old_ctr).stdout)["status"]
        assert (status["exitCode"], status["reason"]) == (7, "Error"), status
        assert "tick 0" in crictl(daemon, "logs", old_ctr).stdout
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
