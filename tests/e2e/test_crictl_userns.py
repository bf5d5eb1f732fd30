"""A pod with a user namespace through crictl (as a kubelet runs hostUsers: false): root inside is
the host's 100000, the image's files are root's, writes are owned by the pod's host ids except in
a volume the kubelet id-maps, exec joins it, the refusals come back as errors, and removing the pod
leaves no pin or mount behind."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.e2e import leaks
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import Pods, container_config, container_pid, pod_config, unique

MAPPING = [{"container_id": 0, "host_id": 100000, "length": 65536}]
USERNS = {"mode": 0, "uids": MAPPING, "gids": MAPPING}  # NamespaceMode POD
SLEEP = ["sleep", "3600"]


def userns_pod(name: str, log_dir: Path, userns: dict = USERNS) -> dict:
    config = pod_config(name, log_dir)
    config["linux"]["security_context"]["namespace_options"]["userns_options"] = userns
    return config


def exec_out(daemon: Daemon, container_id: str, *command: str) -> str:
    return crictl(daemon, "exec", "-s", container_id, *command).stdout.strip()


def owner(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def mounts_under(path: Path) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(path))]


def test_a_pod_with_a_user_namespace(pycrid: Daemon, pods: Pods, tmp_path: Path) -> None:
    mapped, plain = tmp_path / "mapped", tmp_path / "plain"
    for d in (mapped, plain):
        d.mkdir()
        d.chmod(0o777)
    pod_id, pod_path = pods.run(userns_pod(unique("userns"), pods.log_dir))
    ctr = pods.create(pod_id, pod_path, container_config(
        "app", SLEEP, mounts=[
            {"container_path": "/mapped", "host_path": str(mapped), "uidMappings": MAPPING, "gidMappings": MAPPING},
            {"container_path": "/plain", "host_path": str(plain)}],
        linux={"security_context": {"namespace_options": {"pid": 1, "userns_options": USERNS}}}))

    assert exec_out(pycrid, ctr, "id", "-u") == "0"
    assert exec_out(pycrid, ctr, "cat", "/proc/self/uid_map").split() == ["0", "100000", "65536"]
    assert exec_out(pycrid, ctr, "stat", "-c", "%u:%g", "/bin/busybox", "/etc/passwd").split() == ["0:0", "0:0"]
    exec_out(pycrid, ctr, "sh", "-c", "echo a > /in-rootfs; echo b > /mapped/f; echo c > /plain/f")
    status = Path(f"/proc/{container_pid(pycrid, ctr)}/status").read_text()
    assert "Uid:\t100000\t100000\t100000\t100000" in status  # the host's view of the pod's root
    assert owner(pycrid.root / "containers" / ctr / "upper" / "in-rootfs") == (100000, 100000)
    assert owner(mapped / "f") == (0, 0)  # the kubelet asked for an id-mapped volume: the pod's own ids
    assert owner(plain / "f") == (100000, 100000)

    options = json.loads(crictl(pycrid, "inspectp", pod_id).stdout)["status"]["linux"]["namespaces"]["options"]
    assert options["usernsOptions"] == {"mode": "POD", "uids": [{"hostId": 100000, "containerId": 0, "length": 65536}],
                                        "gids": [{"hostId": 100000, "containerId": 0, "length": 65536}]}

    # A container that says nothing of user namespaces (as in the README's example) is in its pod's.
    plain_ctr = pods.create(pod_id, pod_path, container_config("inherits", SLEEP))
    assert exec_out(pycrid, plain_ctr, "cat", "/proc/self/uid_map").split() == ["0", "100000", "65536"]

    other = [{"container_id": 0, "host_id": 200000, "length": 65536}]
    refused = crictl(pycrid, "create", pod_id, pods.write(container_config(
        "other", SLEEP, linux={"security_context": {"namespace_options": {
            "pid": 1, "userns_options": {"mode": 0, "uids": other, "gids": other}}}})), pod_path, check=False)
    assert refused.returncode != 0 and "differs from its pod's" in refused.stderr

    run_dir = pycrid.state / "sandboxes" / pod_id
    assert str(run_dir / "userns") in mounts_under(run_dir)
    crictl(pycrid, "rmp", "-f", pod_id)
    deadline = time.monotonic() + 5
    while mounts_under(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mounts_under(run_dir) == [] and not run_dir.exists()


def test_refused_pods(pycrid: Daemon, pods: Pods) -> None:
    two = [*MAPPING, {"container_id": 0, "host_id": 300000, "length": 65536}]
    for userns, message in (({"mode": 0, "uids": two, "gids": two}, "exactly one uid mapping, got 2"),
                            ({"mode": 1}, "user namespace mode CONTAINER is not supported"),
                            ({"mode": 0, "uids": [{"container_id": 1, "host_id": 100000, "length": 10}],
                              "gids": MAPPING}, "does not map container id 0")):
        result = crictl(pycrid, "runp", pods.write(userns_pod(unique("refused"), pods.log_dir, userns)), check=False)
        assert result.returncode != 0 and "InvalidArgument" in result.stderr and message in result.stderr, result.stderr


def test_a_userns_pod_survives_a_sigkill_of_the_agent(registry: str, tmp_path: Path) -> None:
    """Its status comes back the same, and a container started after the restart joins the same
    user namespace (the pin outlives the agent, as the other namespaces' do)."""
    daemon = start(tmp_path / "pycrid", registry)
    try:
        crictl(daemon, "pull", "busybox:1")
        made = Pods(daemon, tmp_path)
        pod_id, pod_path = made.run(userns_pod(unique("restart"), made.log_dir))
        first = made.create(pod_id, pod_path, container_config("first", SLEEP))
        before = json.loads(crictl(daemon, "inspectp", pod_id).stdout)["status"]
        user = os.stat(f"/proc/{container_pid(daemon, first)}/ns/user").st_ino

        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
        daemon = start(tmp_path / "pycrid", registry)

        assert json.loads(crictl(daemon, "inspectp", pod_id).stdout)["status"] == before
        made.daemon = daemon
        second = made.create(pod_id, pod_path, container_config("second", SLEEP))
        assert os.stat(f"/proc/{container_pid(daemon, second)}/ns/user").st_ino == user
        assert exec_out(daemon, second, "id", "-u") == "0"
    finally:
        left, ran = leaks.remove_everything(daemon)
    assert ran and left.empty(), f"pycrid left behind: {left}"
