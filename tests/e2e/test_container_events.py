"""`crictl events` (GetContainerEvents) while a pod and its containers go through their lives: every
watcher sees every change, in order, each with the pod's status and all its container statuses; a
container that ends on its own is reported without anyone asking for its status; an exit that
happened while pycrid was down is reported once pycrid is back."""
from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import leaks
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.events import EventWatch, is_event, status_of, summary, wait_streams_open
from tests.e2e.workloads import BUSYBOX, NAMESPACE, Pods, container_config, container_pid, pod_config, unique

WAIT_FOR = "while [ ! -e /flags/{0} ]; do sleep 0.05; done; exit {1}"


@pytest.fixture
def daemon(registry: str, tmp_path: Path) -> Iterator[list[Daemon]]:
    """A pycrid of the test's own (it may be restarted: the list holds the current one)."""
    current = [start(tmp_path / "pycrid", registry)]
    crictl(current[0], "pull", BUSYBOX)
    try:
        yield current
    finally:
        left, _ = leaks.remove_everything(current[0])
        assert left.empty(), f"pycrid left behind: {left}"


def test_watchers_see_a_pod_and_its_containers_live(daemon: list[Daemon], tmp_path: Path) -> None:
    d = daemon[0]
    watchers = [EventWatch(d), EventWatch(d)]
    try:
        wait_streams_open(d, 2)
        pods = Pods(d, tmp_path)
        name = unique("events")
        pod, pod_path = pods.run(pod_config(name, pods.log_dir))
        sleeper = pods.create(pod, pod_path, container_config("sleeper", ["sleep", "3600"]))
        quitter = pods.create(pod, pod_path, container_config("quitter", ["sh", "-c", "sleep 0.5; exit 3"]))
        # It ends on its own: reported without a status call (none is made before the event).
        stopped = watchers[0].until(is_event(quitter, "STOPPED"), timeout=10)
        crictl(d, "stop", sleeper)
        crictl(d, "rm", sleeper)
        crictl(d, "stopp", pod)
        crictl(d, "rmp", pod)
        names = {pod: "pod", sleeper: "sleeper", quitter: "quitter"}
        expected = [("pod", "CREATED"), ("pod", "STARTED"), ("sleeper", "CREATED"), ("sleeper", "STARTED"),
                    ("quitter", "CREATED"), ("quitter", "STARTED"), ("quitter", "STOPPED"),
                    ("sleeper", "STOPPED"), ("sleeper", "DELETED"), ("pod", "STOPPED"), ("quitter", "DELETED"),
                    ("pod", "DELETED")]
        for watcher in watchers:
            watcher.until(is_event(pod, "DELETED"))
            assert summary(watcher.seen, names) == expected
            times = [int(e["createdAt"]) for e in watcher.seen]
            assert times == sorted(times)
    finally:
        for watcher in watchers:
            watcher.close()

    # Each event carries the pod's status and every container's status as they were then.
    quit_status = status_of(stopped, quitter)
    assert quit_status is not None and (quit_status["state"], quit_status["exitCode"]) == ("CONTAINER_EXITED", 3)
    assert stopped["podSandboxStatus"]["metadata"] == {"name": name, "uid": f"uid-{name}",
                                                       "namespace": NAMESPACE, "attempt": 0}
    assert status_of(stopped, sleeper)["state"] == "CONTAINER_RUNNING"
    seen = watchers[0].seen
    sleeper_gone = next(e for e in seen if is_event(sleeper, "DELETED")(e))
    assert status_of(sleeper_gone, sleeper) is None and status_of(sleeper_gone, quitter) is not None
    pod_gone = seen[-1]
    assert pod_gone["podSandboxStatus"]["state"] == "SANDBOX_NOTREADY" and pod_gone["containersStatuses"] == []


def test_an_exit_while_pycrid_is_down_is_reported_after_its_restart(daemon: list[Daemon], tmp_path: Path) -> None:
    d = daemon[0]
    flags = tmp_path / "flags"
    flags.mkdir()
    mount = {"mounts": [{"container_path": "/flags", "host_path": str(flags)}]}
    pods = Pods(d, tmp_path)
    pod, pod_path = pods.run(pod_config(unique("restart"), pods.log_dir))
    quitter = pods.create(pod, pod_path, container_config("quitter", ["sh", "-c", WAIT_FOR.format("quit", 5)],
                                                          **mount))
    later = pods.create(pod, pod_path, container_config("later", ["sh", "-c", WAIT_FOR.format("later", 6)],
                                                        **mount))
    stays = pods.create(pod, pod_path, container_config("stays", ["sleep", "3600"]))
    quitter_pid = container_pid(d, quitter)

    d.process.send_signal(signal.SIGKILL)
    d.process.wait(10)
    (flags / "quit").touch()  # it exits while pycrid is down
    deadline = time.monotonic() + 10
    while Path(f"/proc/{quitter_pid}").exists():
        assert time.monotonic() < deadline, "the quitter did not exit"
        time.sleep(0.05)
    d = daemon[0] = start(tmp_path / "pycrid")

    watcher = EventWatch(d)  # as the kubelet reconnects: after the restart
    try:
        stopped = watcher.until(is_event(quitter, "STOPPED"))
        assert status_of(stopped, quitter)["exitCode"] == 5
        assert status_of(stopped, later)["state"] == status_of(stopped, stays)["state"] == "CONTAINER_RUNNING"
        # A container still running at the restart is watched again: its exit is reported too.
        (flags / "later").touch()
        assert status_of(watcher.until(is_event(later, "STOPPED")), later)["exitCode"] == 6
        watcher.drain(1.0)
    finally:
        watcher.close()
    names = {pod: "pod", quitter: "quitter", later: "later", stays: "stays"}
    assert summary(watcher.seen, names) == [("quitter", "STOPPED"), ("later", "STOPPED")]
