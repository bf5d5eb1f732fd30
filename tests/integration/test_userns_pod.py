"""A pod with a user namespace for real (0 -> 100000, 65536 ids): its monitor makes and pins the
user, net, IPC and UTS namespaces, and a container of the host-tools rootfs runs in them as the
pod's root, over id-mapped image layers and volumes. Everything is gone afterwards."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.container.execsync import exec_sync
from runtime.container.model import IdMapping, UserNamespace
from runtime.linux.imagetree import ImageTree
from runtime.linux.proc import mount_points, read_status
from runtime.process.execspec import exec_spec
from runtime.process.initspec import BindMount, InitSpec, Namespaces, User
from runtime.sandbox.namespaces import PinSpec
from runtime.sandbox.userns import map_line, root_owner
from tests.integration.podharness import PodHarness, log_lines, wait_exit

MAPPING = IdMapping(0, 100000, 65536)
USERNS = UserNamespace(MAPPING, MAPPING)
NS_GET_USERNS = 0xB701  # ioctl on a namespace fd: its owning user namespace


@pytest.fixture
def userns_pod(tmp_path: Path, lower: Path) -> Iterator[PodHarness]:
    run = tmp_path / "pod"
    run.mkdir()
    pins = PinSpec("p1", {kind: str(run / kind) for kind in ("user", "net", "ipc", "uts")}, hostname="userns-pod",
                   sysctls={"net.ipv4.ip_unprivileged_port_start": "80"}, shm=str(run / "shm"),
                   shm_uid=root_owner(USERNS)[0], shm_gid=root_owner(USERNS)[1],
                   uid_map=map_line(MAPPING), gid_map=map_line(MAPPING))
    harness = PodHarness(tmp_path, lower, pins)
    user = os.stat(run / "user").st_ino
    try:
        yield harness
    finally:
        zombies = harness.close()
    assert zombies == ()
    assert not [p for p in mount_points() if p.startswith(str(tmp_path))], "mounts left behind"
    assert not processes_in(user), "a process is left in the pod's user namespace"


def processes_in(user_namespace: int) -> list[int]:
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.stat(f"/proc/{pid}/ns/user").st_ino == user_namespace:
                found.append(pid)
        except OSError:
            pass  # gone meanwhile
    return found


def in_pod(pod: PodHarness, container_id: str, args: tuple[str, ...], **changes: object) -> InitSpec:
    run = pod.run_dir
    spec = pod.spec(container_id, args, hostname="", shm_path=str(run / "shm"), userns=USERNS,
                    namespaces=Namespaces(net=str(run / "net"), ipc=str(run / "ipc"), uts=str(run / "uts"),
                                          user=str(run / "user")))
    os.chown(spec.upperdir, *root_owner(USERNS))  # what the container manager does at create
    return replace(spec, **changes)


def owner(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def test_root_in_the_pod_is_an_unprivileged_host_user(userns_pod: PodHarness, tmp_path: Path) -> None:
    mapped, plain, host_only = tmp_path / "mapped", tmp_path / "plain", tmp_path / "host-only"
    for d, mode in ((mapped, 0o755), (plain, 0o777), (host_only, 0o755)):
        d.mkdir()
        d.chmod(mode)
    (host_only / "secret").write_text("host\n")
    (host_only / "secret").chmod(0o600)
    script = ("id -u; id -g; cat /proc/self/uid_map; hostname; stat -c %u:%g / /bin/sh /etc/passwd /mapped /dev/shm; "
              "echo s > /dev/shm/by-pod-root; "
              "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; echo > /in-rootfs; echo x >> /etc/passwd; "
              "echo m > /mapped/by-pod-root; echo p > /plain/by-pod-root; "
              "echo no 2>/dev/null > /host-only/new || echo refused-write; "
              "cat /host-only/secret 2>/dev/null || echo refused-read; "
              "echo 1 2>/dev/null > /proc/sys/net/ipv4/ip_forward || echo refused-sysctl")
    spec = in_pod(userns_pod, "c1", ("sh", "-c", script), capabilities=("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"),
                  mounts=(BindMount(str(mapped), "/mapped", idmap=True), BindMount(str(plain), "/plain"),
                          BindMount(str(host_only), "/host-only")))
    userns_pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0, log_lines(spec)
    assert [text for _, _, text in log_lines(spec)] == [
        "0", "0", "         0     100000      65536", "userns-pod",
        # the image's root-owned files, the id-mapped volume and the pod's shm: the pod's root's
        "0:0", "0:0", "0:0", "0:0", "0:0",
        "80", "refused-write", "refused-read", "refused-sysctl"]
    upper = Path(spec.upperdir)
    assert owner(upper / "in-rootfs") == (100000, 100000)  # what it writes is the host's 100000's
    assert owner(upper / "etc" / "passwd") == (100000, 100000)  # copied up from a root-owned layer
    assert owner(mapped / "by-pod-root") == (0, 0)  # an id-mapped volume stores the pod's own ids
    assert owner(plain / "by-pod-root") == (100000, 100000)
    assert owner(userns_pod.run_dir / "shm" / "by-pod-root") == (100000, 100000)  # its own tmpfs, not id-mapped
    assert not (host_only / "new").exists()


def test_the_pod_namespaces_belong_to_its_user_namespace(userns_pod: PodHarness) -> None:
    run = userns_pod.run_dir
    user = os.stat(run / "user").st_ino
    for kind in ("net", "ipc", "uts"):
        fd = os.open(run / kind, os.O_RDONLY)
        try:
            owner_fd = fcntl.ioctl(fd, NS_GET_USERNS)
            assert os.fstat(owner_fd).st_ino == user, f"the pod's {kind} namespace is not its user namespace's"
            os.close(owner_fd)
        finally:
            os.close(fd)
    spec = in_pod(userns_pod, "c1", ("sleep", "30"))
    pid = userns_pod.start(spec)
    try:
        assert os.stat(f"/proc/{pid}/ns/user").st_ino == user
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(run / "net").st_ino
    finally:
        os.kill(pid, 9)
        wait_exit(spec)


def test_exec_joins_the_pod_as_the_containers_user(userns_pod: PodHarness) -> None:
    spec = in_pod(userns_pod, "c1", ("sleep", "30"))
    pid = userns_pod.start(spec)
    try:
        status = read_status(pid)
        assert status is not None and status["Uid"].split()[0] == "100000"  # as the host sees it
        e = exec_spec("c1", spec, pid, status, ("sh", "-c", "id -u; id -g; cat /proc/self/uid_map; echo > /by-exec"))
        result = exec_sync(userns_pod.monitor, e, 10)
        assert (result.exit_code, result.stderr) == (0, b"")
        assert result.stdout.decode().split() == ["0", "0", "0", "100000", "65536"]
        assert owner(Path(spec.upperdir) / "by-exec") == (100000, 100000)
    finally:
        os.kill(pid, 9)
        wait_exit(spec)


def test_the_pause_runs_in_the_pod_as_its_65535(userns_pod: PodHarness, tmp_path: Path) -> None:
    root = tmp_path / "pause-root"
    root.mkdir()
    run = userns_pod.run_dir
    pins = {kind: str(run / kind) for kind in ("user", "net", "ipc", "uts")}
    pause, _ = userns_pod.monitor.start_pause({"id": "p1", "root": str(root), "namespaces": pins, "user": 65535})
    status = read_status(pause)
    assert status is not None
    assert status["Uid"].split() == ["165535"] * 4 and status["Gid"].split() == ["165535"] * 4
    assert status["CapEff"] == "0000000000000000" and status["CapBnd"] == "0000000000000000"
    assert os.stat(f"/proc/{pause}/ns/user").st_ino == os.stat(run / "user").st_ino


def test_a_non_root_user_is_the_pods_own_id(userns_pod: PodHarness, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    plain.chmod(0o777)
    spec = in_pod(userns_pod, "c1", ("sh", "-c", "id; echo > /plain/by-guest"), user=User(uid=1234, gid=5000),
                  mounts=(BindMount(str(plain), "/plain"),))
    userns_pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0, log_lines(spec)
    assert log_lines(spec)[0][2].startswith("uid=1234(guest) gid=5000(extra)")
    assert owner(plain / "by-guest") == (101234, 105000)


def test_an_image_volume_is_the_pods_roots_like_its_rootfs(userns_pod: PodHarness, tmp_path: Path) -> None:
    top, empty = tmp_path / "snap1", tmp_path / "image-empty"
    (top / "etc").mkdir(parents=True)
    empty.mkdir()
    (top / "etc" / "tool.conf").write_text("from the image\n")
    tree = ImageTree((str(top),), str(empty))
    spec = in_pod(userns_pod, "c1", ("sh", "-c", "stat -c %u:%g /tools /tools/etc/tool.conf; cat /tools/etc/tool.conf"),
                  mounts=(BindMount("", "/tools", readonly=True, image=tree, idmap=True),))
    userns_pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0, log_lines(spec)
    assert [text for _, _, text in log_lines(spec)] == ["0:0", "0:0", "from the image"]
