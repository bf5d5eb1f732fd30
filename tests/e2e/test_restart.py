"""pycrid restarts (even SIGKILL) never touch running containers: same PIDs, byte-identical
statuses, logs that keep growing, and the real exit code of a container that ended meanwhile."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.e2e import leaks
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import container_pid

PODS = 20
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def write(path: Path, doc: dict) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def run_pod(daemon: Daemon, base: Path, n: int, command: str) -> tuple[str, str]:
    logs = base / "logs" / f"pod{n}"
    pod = write(base / f"pod{n}.json", {
        "metadata": {"name": f"restart-{n}", "namespace": "e2e", "uid": f"uid-{n}"},
        "log_directory": str(logs), "hostname": f"restart-{n}",
        "linux": {"security_context": {"namespace_options": {"pid": 1}}}})
    ctr = write(base / f"ctr{n}.json", {
        "metadata": {"name": "main"}, "image": {"image": "busybox:1"}, "command": ["sh", "-c", command],
        "log_path": "main.log", "linux": {"security_context": {"namespace_options": {"pid": 1}}}})
    pod_id = crictl(daemon, "runp", pod).stdout.strip()
    container_id = crictl(daemon, "create", pod_id, ctr, pod).stdout.strip()
    crictl(daemon, "start", container_id)
    return pod_id, container_id


def statuses(daemon: Daemon, pods: list[str], containers: list[str]) -> dict[str, dict]:
    seen = {p: json.loads(crictl(daemon, "inspectp", p).stdout)["status"] for p in pods}
    seen |= {c: json.loads(crictl(daemon, "inspect", c).stdout)["status"] for c in containers}
    return seen


def test_sigkill_and_restart_keeps_every_container(registry: str, tmp_path: Path) -> None:
    daemon = start(tmp_path / "pycrid", registry)
    try:
        crictl(daemon, "pull", "busybox:1")
        started = [run_pod(daemon, tmp_path, n, TICKER) for n in range(PODS)]
        quitter_pod, quitter = run_pod(daemon, tmp_path, PODS, "sleep 1.5; echo bye; exit 7")
        pods = [p for p, _ in started] + [quitter_pod]
        containers = [c for _, c in started]
        pids = {c: container_pid(daemon, c) for c in containers}
        before = statuses(daemon, pods, containers)
        # What init reported at start lives in the record only: it must come back with the rest
        # (root, and wheel, which busybox's /etc/group gives it).
        assert before[containers[0]]["user"] == {"linux": {"uid": "0", "gid": "0", "supplementalGroups": ["0", "10"]}}
        log = Path(before[containers[0]]["logPath"])
        size_before = log.stat().st_size

        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
        time.sleep(2.5)  # the quitter exits while pycrid is down
        daemon = start(tmp_path / "pycrid", registry)

        assert statuses(daemon, pods, containers) == before
        assert {c: container_pid(daemon, c) for c in containers} == pids
        assert all(s["state"] == "CONTAINER_RUNNING" for c, s in before.items() if c in containers)
        quit_status = json.loads(crictl(daemon, "inspect", quitter).stdout)["status"]
        assert (quit_status["state"], quit_status.get("exitCode"), quit_status["reason"]) == \
            ("CONTAINER_EXITED", 7, "Error"), quit_status
        assert "bye" in crictl(daemon, "logs", quitter).stdout
        time.sleep(0.5)
        assert log.stat().st_size > size_before, "logs stopped when pycrid was killed"
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
