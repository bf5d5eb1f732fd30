"""Pods and containers as an operator handles them with crictl: run, list with filters, inspect,
create/start, logs, exec, stop, remove, update, and the errors of duplicate names, unknown IDs and
bad input. Every test removes the pods it made (the `pods` fixture), so the session's leak check
after the suite sees a clean machine."""
from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from tests.e2e.cgroupfiles import (
    UNLIMITED_MEMORY,
    V2,
    cgroup_dir,
    expected,
    in_every_hierarchy,
    memory_file,
    process_cgroup,
    process_limits,
)
from tests.e2e.daemon import Daemon, crictl
from tests.e2e.workloads import (
    BUSYBOX,
    NAMESPACE,
    POD_NS,
    Pods,
    container_config,
    pod_config,
    unique,
)

BUSYBOX_REPO = "docker.io/library/busybox"
UNKNOWN_ID = "f" * 64


SLEEP = ["sleep", "3600"]


# --- crictl helpers ---------------------------------------------------------------------------

def crictl_json(daemon: Daemon, *args: str) -> dict:
    return json.loads(crictl(daemon, *args).stdout)


def ids(daemon: Daemon, *args: str) -> list[str]:
    """`crictl pods|ps ... -q`: the IDs, one a line."""
    return crictl(daemon, *args, "-q").stdout.split()


def inspect(daemon: Daemon, container_id: str) -> dict:
    return crictl_json(daemon, "inspect", container_id)


def wait_exited(daemon: Daemon, container_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = inspect(daemon, container_id)["status"]
        if status["state"] == "CONTAINER_EXITED":
            return status
        assert time.monotonic() < deadline, f"container {container_id} did not exit: {status}"
        time.sleep(0.1)


def parse_time(value: str) -> datetime:
    """crictl prints RFC 3339 with nanoseconds; datetime takes microseconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", value)
    assert m, f"not an RFC 3339 UTC time: {value!r}"
    return datetime.fromisoformat(m[1]).replace(microsecond=int((m[2] or "0")[:6].ljust(6, "0")),
                                                tzinfo=UTC)


@pytest.fixture
def runtime_service(pycrid: Daemon) -> Iterator[pb_grpc.RuntimeServiceStub]:
    """For what crictl cannot send: it looks an ID up before `rm`/`rmp` and validates metadata itself."""
    with grpc.insecure_channel(pycrid.endpoint) as channel:
        yield pb_grpc.RuntimeServiceStub(channel)


# --- pods -------------------------------------------------------------------------------------

def test_runp_then_pods_with_filters_inspectp_stopp_rmp(pycrid: Daemon, pods: Pods) -> None:
    name = unique("listed")
    before = datetime.now(UTC)
    pod_id, _ = pods.run(pod_config(name, pods.log_dir, hostname="listed-host",
                                    labels={"app": name, "tier": "web"},
                                    annotations={"note": "a=b c", "owner": "e2e"}))
    other_id, _ = pods.run(pod_config(unique("other"), pods.log_dir, labels={"app": "other"}))

    listed = {p["id"]: p for p in crictl_json(pycrid, "pods", "-o", "json")["items"]}
    assert listed[pod_id]["state"] == "SANDBOX_READY"
    assert listed[pod_id]["metadata"] == {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}",
                                          "attempt": 0}
    assert ids(pycrid, "pods", "--name", name) == [pod_id]
    assert ids(pycrid, "pods", "--label", f"app={name}") == [pod_id]
    assert ids(pycrid, "pods", "--label", f"app={name}", "--label", "tier=db") == []
    assert ids(pycrid, "pods", "--id", pod_id[:12]) == [pod_id]
    ready = ids(pycrid, "pods", "--state", "ready")
    assert pod_id in ready and other_id in ready
    assert pod_id not in ids(pycrid, "pods", "--state", "notready")
    assert set(ids(pycrid, "pods", "--namespace", NAMESPACE)) >= {pod_id, other_id}

    inspected = crictl_json(pycrid, "inspectp", pod_id)
    status = inspected["status"]
    assert status["id"] == pod_id and status["state"] == "SANDBOX_READY"
    ip = ipaddress.ip_address(status["network"]["ip"])
    pod_cidr = tomllib.loads(pycrid.config_path.read_text())["network"]["pod_cidr"]
    assert ip in ipaddress.ip_network(pod_cidr), ip
    other_ip = crictl_json(pycrid, "inspectp", other_id)["status"]["network"]["ip"]
    assert other_ip != str(ip)
    created = parse_time(status["createdAt"])
    assert before.replace(microsecond=0) <= created <= datetime.now(UTC)
    assert status["linux"]["namespaces"]["options"] == {"network": "POD", "pid": "CONTAINER", "ipc": "POD",
                                                        "targetId": ""}
    assert status["labels"] == {"app": name, "tier": "web"}
    assert status["annotations"] == {"note": "a=b c", "owner": "e2e"}
    info = inspected["info"]
    assert info["id"] == pod_id and info["config"]["hostname"] == "listed-host"
    assert Path(info["paths"]["netns"]).exists()  # the pinned network namespace on the host

    crictl(pycrid, "stopp", pod_id)
    assert crictl_json(pycrid, "inspectp", pod_id)["status"]["state"] == "SANDBOX_NOTREADY"
    assert ids(pycrid, "pods", "--state", "notready", "--name", name) == [pod_id]
    assert ids(pycrid, "pods", "--state", "ready", "--name", name) == []
    crictl(pycrid, "rmp", pod_id)
    assert ids(pycrid, "pods", "--name", name) == []
    gone = crictl(pycrid, "inspectp", pod_id, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


# --- containers -------------------------------------------------------------------------------

def test_create_start_ps_filters_and_inspect(pycrid: Daemon, pods: Pods, tmp_path: Path) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("ctrs"), pods.log_dir))
    host_dir = tmp_path / "data"
    host_dir.mkdir()
    mounts = [{"container_path": "/data", "host_path": str(host_dir), "readonly": True}]
    running = pods.create(pod_id, pod_path, container_config("runner", SLEEP, labels={"tier": "a"},
                                                             annotations={"why": "e2e"}, mounts=mounts))
    created = pods.create(pod_id, pod_path, container_config("waiter", SLEEP, labels={"tier": "b"}),
                          start=False)

    assert ids(pycrid, "ps", "--pod", pod_id) == [running]  # without -a: running only
    assert sorted(ids(pycrid, "ps", "-a", "--pod", pod_id)) == sorted([running, created])
    assert ids(pycrid, "ps", "-a", "--pod", pod_id, "--state", "created") == [created]
    assert ids(pycrid, "ps", "-a", "--pod", pod_id, "--state", "running") == [running]
    assert ids(pycrid, "ps", "-a", "--pod", pod_id, "--label", "tier=b") == [created]
    assert ids(pycrid, "ps", "-a", "--pod", pod_id, "--name", "^runner$") == [running]
    assert ids(pycrid, "ps", "-a", "--id", running[:12]) == [running]
    listed = crictl_json(pycrid, "ps", "-a", "--pod", pod_id, "-o", "json")["containers"]
    by_id = {c["id"]: c for c in listed}
    assert by_id[running]["state"] == "CONTAINER_RUNNING" and by_id[created]["state"] == "CONTAINER_CREATED"
    assert by_id[running]["podSandboxId"] == pod_id and by_id[running]["metadata"]["name"] == "runner"

    image_id = crictl_json(pycrid, "inspecti", BUSYBOX)["status"]["id"]
    inspected = inspect(pycrid, running)
    status = inspected["status"]
    assert status["id"] == running and status["state"] == "CONTAINER_RUNNING"
    assert status["imageId"] == image_id
    assert re.fullmatch(rf"{BUSYBOX_REPO}@sha256:[0-9a-f]{{64}}", status["imageRef"]), status["imageRef"]
    assert status["logPath"] == str(pods.log_dir / "runner.log")
    assert status["labels"] == {"tier": "a"} and status["annotations"] == {"why": "e2e"}
    assert [(m["containerPath"], m["hostPath"], m["readonly"]) for m in status["mounts"]] == \
        [("/data", str(host_dir), True)]
    assert parse_time(status["createdAt"]) <= parse_time(status["startedAt"])
    assert status["exitCode"] == 0 and status["reason"] == ""
    pid = inspected["info"]["pid"]
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x003600\x00"  # the host sees the process

    waiting = inspect(pycrid, created)["status"]
    assert waiting["state"] == "CONTAINER_CREATED" and waiting["startedAt"] == "0001-01-01T00:00:00Z"


def test_logs_stdout_stderr_tail_and_follow(pycrid: Daemon, pods: Pods) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("logs"), pods.log_dir))
    once = pods.create(pod_id, pod_path, container_config(
        "once", ["sh", "-c", "echo out-1; echo err-1 >&2; sleep 0.3; echo out-2; echo out-3; echo out-4"]))
    ticker = pods.create(pod_id, pod_path, container_config(
        "ticker", ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]))

    assert wait_exited(pycrid, once)["exitCode"] == 0
    logs = crictl(pycrid, "logs", once)
    assert logs.stdout.splitlines() == ["out-1", "out-2", "out-3", "out-4"]
    assert "err-1" in logs.stderr.splitlines()  # crictl writes the stderr stream to its stderr
    lines = (pods.log_dir / "once.log").read_text().splitlines()  # the CRI log format on disk
    assert len(lines) == 5
    assert [line.split()[-1] for line in lines[-2:]] == ["out-3", "out-4"]
    tail = crictl(pycrid, "logs", "--tail", "2", once)
    assert (tail.stdout.splitlines(), "err-1" in tail.stderr) == (["out-3", "out-4"], False)
    assert re.fullmatch(r"\S+Z stderr F err-1", next(line for line in lines if "err-1" in line))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) F \S+", line) for line in lines), lines

    time.sleep(0.5)
    seen = [int(line.split()[1]) for line in crictl(pycrid, "logs", ticker).stdout.splitlines()]
    assert seen and seen == list(range(1, len(seen) + 1))
    env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=pycrid.endpoint)
    follow = subprocess.Popen(["crictl", "logs", "-f", ticker], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    got: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [got.put(line) for line in follow.stdout], daemon=True).start()
    try:
        followed: list[int] = []
        deadline = time.monotonic() + 10
        while not followed or followed[-1] <= seen[-1] + 2:  # lines written after `logs -f` began
            followed.append(int(got.get(timeout=max(0.1, deadline - time.monotonic())).split()[1]))
        assert followed == list(range(1, len(followed) + 1))
        assert follow.poll() is None  # still following a running container
    finally:
        follow.kill()
        follow.wait(10)


def test_exec_sync_output_exit_code_and_timeout(pycrid: Daemon, pods: Pods,
                                                runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("exec"), pods.log_dir))
    cid = pods.create(pod_id, pod_path, container_config("target", SLEEP))

    ok = crictl(pycrid, "exec", "-s", cid, "sh", "-c", "echo hello world; echo to-stderr >&2")
    assert [line for line in ok.stdout.splitlines() if line] == ["hello world", "to-stderr"]  # crictl prints both
    reply = runtime_service.ExecSync(pb.ExecSyncRequest(container_id=cid, timeout=10,
                                                        cmd=["sh", "-c", "echo out; echo err >&2; exit 4"]))
    assert (reply.stdout, reply.stderr, reply.exit_code) == (b"out\n", b"err\n", 4)

    failed = crictl(pycrid, "exec", "-s", cid, "sh", "-c", "echo partial; exit 7", check=False)
    assert failed.returncode != 0
    assert "exited with 7" in failed.stderr

    started = time.monotonic()
    slow = crictl(pycrid, "exec", "-s", "--timeout", "1", cid, "sleep", "42", check=False)
    assert slow.returncode != 0 and "timed out" in slow.stderr
    assert time.monotonic() - started < 10
    time.sleep(0.5)
    procs = crictl(pycrid, "exec", "-s", cid, "ps", "-o", "args").stdout
    assert "sleep 42" not in procs and "sleep 3600" in procs  # the timed-out command was killed


def test_stop_exit_codes_and_reasons(pycrid: Daemon, pods: Pods) -> None:
    # A shared PID namespace: `sleep` is not PID 1 there, so SIGTERM ends it (143).
    pod_id, pod_path = pods.run(pod_config(unique("stops"), pods.log_dir, pid=POD_NS))
    termed = pods.create(pod_id, pod_path, container_config("termed", SLEEP, pid=POD_NS))
    stubborn = pods.create(pod_id, pod_path, container_config(
        "stubborn", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], pid=POD_NS))
    completed = pods.create(pod_id, pod_path, container_config("completed", ["sh", "-c", "exit 0"], pid=POD_NS))
    failed = pods.create(pod_id, pod_path, container_config("failed", ["sh", "-c", "exit 3"], pid=POD_NS))

    crictl(pycrid, "stop", "--timeout", "10", termed)
    status = inspect(pycrid, termed)["status"]
    assert (status["state"], status["exitCode"], status["reason"]) == ("CONTAINER_EXITED", 143, "Error")

    started = time.monotonic()
    crictl(pycrid, "stop", "--timeout", "1", stubborn)
    elapsed = time.monotonic() - started
    status = inspect(pycrid, stubborn)["status"]
    assert (status["state"], status["exitCode"], status["reason"]) == ("CONTAINER_EXITED", 137, "Error")
    assert 1.0 <= elapsed < 8, f"SIGKILL should follow the 1 s grace period, stop took {elapsed:.2f}s"
    assert parse_time(status["startedAt"]) <= parse_time(status["finishedAt"])

    status = wait_exited(pycrid, completed)
    assert (status["exitCode"], status["reason"]) == (0, "Completed")
    status = wait_exited(pycrid, failed)
    assert (status["exitCode"], status["reason"]) == (3, "Error")

    crictl(pycrid, "stop", termed)  # stopping an exited container again is fine and changes nothing
    assert inspect(pycrid, termed)["status"]["exitCode"] == 143


def test_rm_stopp_rmp(pycrid: Daemon, pods: Pods) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("removal"), pods.log_dir))
    first = pods.create(pod_id, pod_path, container_config("first", SLEEP))
    second = pods.create(pod_id, pod_path, container_config("second", SLEEP))
    third = pods.create(pod_id, pod_path, container_config("third", SLEEP))
    pid = inspect(pycrid, first)["info"]["pid"]

    crictl(pycrid, "stop", first)
    crictl(pycrid, "rm", first)
    assert sorted(ids(pycrid, "ps", "-a", "--pod", pod_id)) == sorted([second, third])
    assert not Path(f"/proc/{pid}").exists() or b"3600" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    gone = crictl(pycrid, "inspect", first, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    crictl(pycrid, "rm", "-f", second)  # a running container goes with --force
    assert ids(pycrid, "ps", "-a", "--pod", pod_id) == [third]

    crictl(pycrid, "stopp", pod_id)
    assert inspect(pycrid, third)["status"]["state"] == "CONTAINER_EXITED"
    assert crictl_json(pycrid, "inspectp", pod_id)["status"]["state"] == "SANDBOX_NOTREADY"
    crictl(pycrid, "rmp", pod_id)
    assert ids(pycrid, "ps", "-a", "--pod", pod_id) == []
    assert crictl(pycrid, "inspect", third, check=False).returncode != 0
    assert pod_id not in ids(pycrid, "pods")


def test_update_reaches_the_cgroup(pycrid: Daemon, pods: Pods) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("update"), pods.log_dir))
    cid = pods.create(pod_id, pod_path, container_config("limited", SLEEP))
    inspected = inspect(pycrid, cid)
    pid = inspected["info"]["pid"]
    memory = process_cgroup(pid, "memory")
    assert memory == cgroup_dir(inspected["info"]["cgroup"], "memory")
    assert cid in memory.name
    assert process_limits(pid)[memory_file()] == UNLIMITED_MEMORY  # before the update

    crictl(pycrid, "update", "--memory", "67108864", "--cpu-quota", "20000", "--cpu-period", "100000", cid)
    want = expected(67108864, None, 20000, 100000)
    got = process_limits(pid)
    assert {name: got[name] for name in want} == want
    resources = inspect(pycrid, cid)["status"]["resources"]["linux"]
    assert (resources["memoryLimitInBytes"], resources["cpuQuota"], resources["cpuPeriod"]) == \
        ("67108864", "20000", "100000")
    # Its own cgroup, as the container sees it (v2: from its cgroup namespace, at the root).
    inside = crictl(pycrid, "exec", "-s", cid, "cat",
                    f"/sys/fs/cgroup/{memory_file()}" if V2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
    assert inside.strip() == "67108864"


def test_the_pause_process_runs_under_the_pod_cgroup(pycrid: Daemon, pods: Pods) -> None:
    parent = f"/pycrid-e2e-{os.urandom(3).hex()}/pod1"  # what the kubelet would make per pod
    try:
        config = pod_config(unique("paused"), pods.log_dir, pid=POD_NS)
        config["linux"]["cgroup_parent"] = parent
        pod_id, pod_path = pods.run(config)
        cid = pods.create(pod_id, pod_path, container_config("app", SLEEP, pid=POD_NS))
        app = inspect(pycrid, cid)["info"]["pid"]
        for controller in ("memory", "cpu", "pids", "freezer"):
            own = cgroup_dir(f"{parent}/{pod_id}", controller)
            (pause,) = [int(p) for p in (own / "cgroup.procs").read_text().split()]
            assert process_cgroup(app, controller).parent == own.parent
        # It is the PID 1 the container sees, as the pause user.
        assert os.readlink(f"/proc/{pause}/ns/pid") == crictl(pycrid, "exec", "-s", cid, "readlink",
                                                               "/proc/self/ns/pid").stdout.strip()
        assert "65535" in Path(f"/proc/{pause}/status").read_text().split("Uid:")[1].split("\n")[0]
        crictl(pycrid, "stopp", pod_id)
        assert not any(p.exists() for p in in_every_hierarchy(f"{parent}/{pod_id}"))
    finally:
        pods.remove_all()
        for top in in_every_hierarchy(parent):
            for d in (top, top.parent):
                if d.is_dir():
                    d.rmdir()


# --- errors -----------------------------------------------------------------------------------

def test_duplicate_names_are_already_exists_until_removed(pycrid: Daemon, pods: Pods) -> None:
    config = pod_config(unique("dup"), pods.log_dir)
    pod_id, pod_path = pods.run(config)
    again = crictl(pycrid, "runp", pods.write(config), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr and pod_id in again.stderr

    cid = pods.create(pod_id, pod_path, container_config("twin", SLEEP))
    twin = crictl(pycrid, "create", pod_id, pods.write(container_config("twin", SLEEP)), pod_path, check=False)
    assert twin.returncode != 0 and "AlreadyExists" in twin.stderr and cid in twin.stderr
    crictl(pycrid, "rm", "-f", cid)
    replacement = pods.create(pod_id, pod_path, container_config("twin", SLEEP))
    assert replacement != cid

    crictl(pycrid, "rmp", "-f", pod_id)
    new_pod, _ = pods.run(config)
    assert new_pod != pod_id


def test_stop_and_remove_of_unknown_ids_succeed(pycrid: Daemon, pods: Pods,
                                                runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    assert crictl(pycrid, "stop", UNKNOWN_ID).returncode == 0
    assert crictl(pycrid, "stopp", UNKNOWN_ID).returncode == 0
    # crictl looks the ID up before rm/rmp (and fails there), so these go to the CRI directly.
    runtime_service.RemoveContainer(pb.RemoveContainerRequest(container_id=UNKNOWN_ID))
    runtime_service.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=UNKNOWN_ID))
    runtime_service.StopContainer(pb.StopContainerRequest(container_id=UNKNOWN_ID, timeout=0))

    pod_id, pod_path = pods.run(pod_config(unique("twice"), pods.log_dir))
    cid = pods.create(pod_id, pod_path, container_config("once", SLEEP))
    crictl(pycrid, "rm", "-f", cid)
    runtime_service.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))  # already gone
    crictl(pycrid, "stopp", pod_id)
    crictl(pycrid, "stopp", pod_id)
    crictl(pycrid, "rmp", pod_id)
    runtime_service.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    runtime_service.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))


def test_bad_input_names_the_object(pycrid: Daemon, pods: Pods,
                                    runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    missing = "busybox:never-pulled"
    assert crictl(pycrid, "inspecti", missing, check=False).returncode != 0
    pod_id, pod_path = pods.run(pod_config(unique("bad"), pods.log_dir))
    create = crictl(pycrid, "create", pod_id, pods.write(container_config("nope", SLEEP, image=missing)),
                    pod_path, check=False)
    assert create.returncode != 0 and "code = NotFound" in create.stderr and missing in create.stderr
    assert ids(pycrid, "ps", "-a", "--pod", pod_id) == []

    orphan = crictl(pycrid, "create", UNKNOWN_ID, pods.write(container_config("orphan", SLEEP)), pod_path,
                    check=False)
    assert orphan.returncode != 0 and "NotFound" in orphan.stderr and UNKNOWN_ID in orphan.stderr

    bad_dns = crictl(pycrid, "runp", pods.write(pod_config(unique("dns"), pods.log_dir,
                                                           dns_config={"servers": ["not-an-ip"]})),
                     check=False)
    assert bad_dns.returncode != 0 and "code = InvalidArgument" in bad_dns.stderr
    assert "not-an-ip" in bad_dns.stderr

    # crictl refuses a config without a name before sending it; the runtime must refuse it too.
    nameless = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(namespace=NAMESPACE, uid="uid-nameless"),
                                   log_directory=str(pods.log_dir))
    with pytest.raises(grpc.RpcError) as error:
        runtime_service.RunPodSandbox(pb.RunPodSandboxRequest(config=nameless))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.name" in error.value.details()


def test_execsync_output_is_capped_at_16_mib_per_stream(pycrid: Daemon, pods: Pods) -> None:
    """CVE-2022-1708: a command printing without end must not exhaust the agent's memory; the
    reply holds the first 16 MiB of each stream and the command still completes."""
    pod_id, pod_path = pods.run(pod_config(unique("bigout"), pods.log_dir))
    container_id = pods.create(pod_id, pod_path, container_config("big", SLEEP))
    cap = 16 * 1024 * 1024
    options = [("grpc.max_receive_message_length", 3 * cap)]
    with grpc.insecure_channel(pycrid.endpoint, options=options) as channel:
        reply = pb_grpc.RuntimeServiceStub(channel).ExecSync(pb.ExecSyncRequest(
            container_id=container_id, timeout=60,
            cmd=["sh", "-c", "head -c 20971520 /dev/zero; head -c 17825792 /dev/zero >&2; exit 3"]))
    assert (len(reply.stdout), len(reply.stderr), reply.exit_code) == (cap, cap, 3)
    assert reply.stdout == bytes(cap)
