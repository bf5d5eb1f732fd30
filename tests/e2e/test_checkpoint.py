"""CheckpointContainer with CRIU, and the restore by creating a container from the archive, as an
operator does it with crictl (`crictl checkpoint --export`, then `crictl create` with the archive
as the image) and the kubelet's checkpoint API through the CRI. Real CRIU, real kernel."""
from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from tests.e2e.daemon import Daemon, crictl
from tests.e2e.workloads import Pods, container_config, pod_config, unique

COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; echo $i > /count; sleep 0.1; done"]


@pytest.fixture
def runtime_service(pycrid: Daemon) -> Iterator[pb_grpc.RuntimeServiceStub]:
    with grpc.insecure_channel(pycrid.endpoint) as channel:
        yield pb_grpc.RuntimeServiceStub(channel)


def count(daemon: Daemon, container_id: str) -> int:
    """The counter's /count; the shell truncates it before each write, so an empty read is retried."""
    return int(wait_for("a value in /count", lambda: crictl(daemon, "exec", container_id, "cat", "/count").stdout))


def logged(log: Path) -> list[int]:
    """The counter values a container logged (CRI log lines: time stream tag text)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [int(line.split(" ", 3)[3]) for line in lines if re.fullmatch(r"\S+ stdout F \d+", line)]


def wait_for(what: str, check, timeout: float = 15.0):  # noqa: ANN001, ANN201 - a predicate and its value
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def containers_dirs(daemon: Daemon) -> set[str]:
    return set(os.listdir(daemon.root / "containers"))


def test_a_checkpointed_counter_keeps_running_and_resumes_in_a_new_pod(
        pycrid: Daemon, pods: Pods, tmp_path: Path) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("ckpt"), pods.log_dir))
    original = pods.create(pod_id, pod_path, container_config("counter", COUNTER))
    wait_for("the counter to reach 10", lambda: logged(pods.log_dir / "counter.log")[-1:] >= [10])
    archive = tmp_path / "checkpoint-ckpt_e2e-counter.tar"

    before = count(pycrid, original)
    crictl(pycrid, "checkpoint", f"--export={archive}", original)
    after = count(pycrid, original)

    # The archive, in the layout CRI-O and containerd write (checkpointctl reads it), and private.
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        config = json.load(tar.extractfile("config.dump"))  # type: ignore[arg-type]
        spec = json.load(tar.extractfile("spec.dump"))  # type: ignore[arg-type]
    assert {"checkpoint", "checkpoint/inventory.img", "checkpoint/pstree.img", "config.dump", "spec.dump",
            "rootfs-diff.tar", "deleted.files", "stats-dump"} <= names
    assert config["id"] == original and config["name"] == "counter" and config["runtime"] == "pycrid"
    assert config["rootfsImageName"] == "busybox:1" and config["rootfsImage"].startswith("sha256:")
    assert spec["annotations"]["io.kubernetes.cri.container-name"] == "counter"
    assert spec["process"]["args"] == COUNTER
    assert [p for p in os.listdir(tmp_path) if p != archive.name and p != "logs" and not p.startswith("config")] == []

    # The original was left running and goes on counting.
    assert json.loads(crictl(pycrid, "inspect", original).stdout)["status"]["state"] == "CONTAINER_RUNNING"
    wait_for("the original to go on counting", lambda: count(pycrid, original) > after)

    # Restored into another pod, it resumes from where it was dumped, not from 0.
    restored_pod, restored_path = pods.run(pod_config(unique("restored"), pods.log_dir))
    restored = pods.create(restored_pod, restored_path,
                           container_config("restored", [], image=str(archive)))
    values = wait_for("the restored counter's output", lambda: logged(pods.log_dir / "restored.log"))
    assert before < values[0] <= after + 1, (before, values[0], after)
    wait_for("the restored counter to go on", lambda: logged(pods.log_dir / "restored.log")[-1] > values[0] + 5)
    assert count(pycrid, restored) > values[0]  # its /count, from the archive's rootfs diff, moves on too
    status = json.loads(crictl(pycrid, "inspect", restored).stdout)
    assert status["status"]["state"] == "CONTAINER_RUNNING"
    assert status["status"]["image"]["image"] == "busybox:1"
    assert status["info"]["sandboxID"] == restored_pod
    # It lives in the new pod's network namespace, and is the new pod monitor's child.
    pid = status["info"]["pid"]
    netns = json.loads(crictl(pycrid, "inspectp", restored_pod).stdout)["info"]["paths"]["netns"]
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns).st_ino
    crictl(pycrid, "stop", restored)
    assert json.loads(crictl(pycrid, "inspect", restored).stdout)["status"]["state"] == "CONTAINER_EXITED"


def corrupted(archive: Path, path: Path) -> Path:
    """The archive with CRIU's process tree image garbled: well-formed, but CRIU cannot restore it."""
    with tarfile.open(archive) as source, tarfile.open(path, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            if member.name == "checkpoint/pstree.img":
                data = b"\xff" * len(data)
            out.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return path


def test_a_restore_that_criu_fails_is_a_start_error_with_criu_s_words_and_leaves_nothing(
        pycrid: Daemon, pods: Pods, tmp_path: Path) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("bad"), pods.log_dir))
    original = pods.create(pod_id, pod_path, container_config("counter", COUNTER))
    crictl(pycrid, "checkpoint", f"--export={tmp_path / 'good.tar'}", original)
    archive = corrupted(tmp_path / "good.tar", tmp_path / "bad.tar")
    restored = pods.create(pod_id, pod_path, container_config("restored", [], image=str(archive)), start=False)
    result = crictl(pycrid, "start", restored, check=False)
    assert result.returncode != 0 and "criu restore failed" in result.stderr, result.stderr
    status = json.loads(crictl(pycrid, "inspect", restored).stdout)
    assert status["status"]["state"] == "CONTAINER_EXITED" and status["status"]["reason"] == "StartError"
    rootfs = status["info"]["spec"]["rootfs"]
    assert not any(line.split()[1] == rootfs for line in Path("/proc/self/mounts").read_text().splitlines())
    crictl(pycrid, "rm", restored)
    assert restored not in containers_dirs(pycrid)
    assert json.loads(crictl(pycrid, "inspect", original).stdout)["status"]["state"] == "CONTAINER_RUNNING"


def test_a_tty_container_is_refused_and_nothing_is_written(
        pycrid: Daemon, pods: Pods, tmp_path: Path, runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("tty"), pods.log_dir))
    container = pods.create(pod_id, pod_path, container_config("tty", ["sleep", "3600"], tty=True))
    location = tmp_path / "tty.tar"
    with pytest.raises(grpc.RpcError) as err:
        runtime_service.CheckpointContainer(pb.CheckpointContainerRequest(
            container_id=container, location=str(location), timeout=30))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TTY" in err.value.details()
    assert not location.exists()


def test_checkpoint_refusals(pycrid: Daemon, pods: Pods, tmp_path: Path,
                             runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("refused"), pods.log_dir))
    done = pods.create(pod_id, pod_path, container_config("done", ["true"]))
    wait_for("the container to exit", lambda: json.loads(crictl(pycrid, "inspect", done).stdout)
             ["status"]["state"] == "CONTAINER_EXITED")
    cases = [(done, str(tmp_path / "a.tar"), grpc.StatusCode.FAILED_PRECONDITION, "not running"),
             ("f" * 64, str(tmp_path / "b.tar"), grpc.StatusCode.NOT_FOUND, ""),
             (done, "relative.tar", grpc.StatusCode.INVALID_ARGUMENT, "absolute"),
             (done, str(tmp_path / "no-such-dir" / "c.tar"), grpc.StatusCode.INVALID_ARGUMENT, "does not exist")]
    for container, location, code, words in cases:
        with pytest.raises(grpc.RpcError) as err:
            runtime_service.CheckpointContainer(pb.CheckpointContainerRequest(
                container_id=container, location=location, timeout=10))
        assert err.value.code() == code, (location, err.value.details())
        assert words in err.value.details()


def hostile_archive(path: Path) -> None:
    """A checkpoint archive whose entries reach out of the directory it is unpacked into."""
    with tarfile.open(path, "w") as tar:
        for name, data in (("config.dump", b"{}"), ("../escaped-by-checkpoint", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_hostile_archive_is_refused_and_leaves_nothing_behind(
        pycrid: Daemon, pods: Pods, tmp_path: Path, runtime_service: pb_grpc.RuntimeServiceStub) -> None:
    pod_id, pod_path = pods.run(pod_config(unique("hostile"), pods.log_dir))
    archive = tmp_path / "sub" / "hostile.tar"
    archive.parent.mkdir()
    hostile_archive(archive)
    dirs = containers_dirs(pycrid)
    config = json.loads(Path(pods.write(container_config("hostile", [], image=str(archive)))).read_text())
    sandbox = json.loads(Path(pod_path).read_text())
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=config["metadata"]["name"]), image=pb.ImageSpec(image=str(archive)),
        log_path="hostile.log", linux=pb.LinuxContainerConfig()),
        sandbox_config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(**sandbox["metadata"])))
    with pytest.raises(grpc.RpcError) as err:
        runtime_service.CreateContainer(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "escaped-by-checkpoint" in err.value.details()
    for escaped in (tmp_path / "escaped-by-checkpoint", pycrid.root / "escaped-by-checkpoint",
                    pycrid.root / "containers" / "escaped-by-checkpoint"):
        assert not escaped.exists()
    assert containers_dirs(pycrid) == dirs
    assert crictl(pycrid, "ps", "-a", "-q", "--pod", pod_id).stdout.strip() == ""
