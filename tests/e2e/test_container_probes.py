"""What a container sees, probed from inside with `crictl exec -s` (busybox applets) and, where that
is the proof, from the host: identity files, DNS, users and groups, capabilities, no_new_privs and
seccomp, mounts, masked and read-only paths, /dev, env, cgroup limits and the namespace modes.

A few pods (one with many containers running `sleep 3600`) serve all probes of this module; they
are removed when the module ends, before the session's leak check."""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cgroupfiles import V2, process_cgroup
from tests.e2e.daemon import Daemon, crictl
from tests.e2e.workloads import container_pid

BUSYBOX = "busybox:1"
USER_UID_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-user-uid"            # USER 1002
USER_NAME_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-user-username"      # USER www-data
PREDEFINED_GROUP_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-predefined-group"  # USER 1000, in 50000
NAMESPACE = "e2e-probes"
POD_NS, CONTAINER_NS, NODE_NS = 0, 1, 2  # runtime.v1.NamespaceMode
RUNTIME_DEFAULT, UNCONFINED = 0, 1       # runtime.v1.SecurityProfile.ProfileType
DEFAULT_CAPS = 0x00000000A80425FB        # containerd's default set (CHOWN … AUDIT_WRITE, SETFCAP)
CAP_NET_ADMIN = 12
MEMORY_LIMIT = 64 * 1024 * 1024
SLEEP = ["sleep", "3600"]
DNS = {"servers": ["10.96.0.10", "1.1.1.1"], "searches": ["probe.svc.cluster.local", "cluster.local"],
       "options": ["ndots:5", "timeout:2"]}


@dataclass
class Pod:
    id: str
    ip: str
    containers: dict[str, str]


class Probes:
    def __init__(self, daemon: Daemon, base: Path) -> None:
        self.daemon = daemon
        self.base = base
        self.log_dir = base / "logs"
        self.log_dir.mkdir()
        self.pods: list[str] = []

    def _write(self, config: dict) -> str:
        path = self.base / f"{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(config))
        return str(path)

    def run(self, name: str, pod_linux: dict, containers: dict[str, dict], **pod_extra: object) -> Pod:
        """Runs a pod and starts its containers; `containers` maps a name to the rest of its config."""
        config = {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}-{secrets.token_hex(2)}"},
                  "log_directory": str(self.log_dir), "linux": pod_linux, **pod_extra}
        pod_path = self._write(config)
        pod_id = crictl(self.daemon, "runp", pod_path).stdout.strip()
        self.pods.append(pod_id)
        made = {}
        for cname, extra in containers.items():
            cconfig = {"metadata": {"name": cname}, "image": {"image": BUSYBOX}, "command": SLEEP,
                       "linux": {}, **extra}
            cid = crictl(self.daemon, "create", pod_id, self._write(cconfig), pod_path).stdout.strip()
            crictl(self.daemon, "start", cid)
            made[cname] = cid
        ip = json.loads(crictl(self.daemon, "inspectp", pod_id).stdout)["status"]["network"]["ip"]
        return Pod(pod_id, ip, made)

    def remove(self) -> None:
        for pod_id in self.pods:
            crictl(self.daemon, "rmp", "-f", pod_id, check=False)


def execute(daemon: Daemon, cid: str, *cmd: str) -> subprocess.CompletedProcess:
    return crictl(daemon, "exec", "-s", cid, *cmd, check=False)


def out(daemon: Daemon, cid: str, *cmd: str) -> str:
    """The command's output (crictl adds blank lines after it); the command must succeed."""
    result = execute(daemon, cid, *cmd)
    assert result.returncode == 0, f"{cmd} failed in {cid[:12]}: {result.stderr}"
    return result.stdout.rstrip("\n")


def status_field(daemon: Daemon, cid: str, field: str) -> str:
    """A field of /proc/self/status as the container's process sees it."""
    for line in out(daemon, cid, "cat", "/proc/self/status").splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    raise AssertionError(f"no {field} in /proc/self/status")


def host_status_field(pid: int | str, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def groups(daemon: Daemon, cid: str) -> set[int]:
    return {int(g) for g in status_field(daemon, cid, "Groups").split()}


def mount_options(daemon: Daemon, cid: str, target: str) -> list[str]:
    """The options of the last (visible) mount on `target` in the container's /proc/mounts."""
    found = [line.split()[3].split(",") for line in out(daemon, cid, "cat", "/proc/mounts").splitlines()
             if line.split()[1] == target]
    assert found, f"nothing is mounted on {target}"
    return found[-1]


# --- the pods ---------------------------------------------------------------------------------

@dataclass
class HostPaths:
    ro_dir: Path
    rw_dir: Path
    file: Path
    marker: Path


@pytest.fixture(scope="module")
def probes(pycrid: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probes]:
    for image in (BUSYBOX, USER_UID_IMAGE, USER_NAME_IMAGE, PREDEFINED_GROUP_IMAGE):
        crictl(pycrid, "pull", image)
    made = Probes(pycrid, tmp_path_factory.mktemp("probes"))
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture(scope="module")
def host_paths(tmp_path_factory: pytest.TempPathFactory) -> HostPaths:
    base = tmp_path_factory.mktemp("host-paths")
    paths = HostPaths(base / "ro", base / "rw", base / "file.txt", base / "marker.txt")
    paths.ro_dir.mkdir()
    (paths.ro_dir / "existing").write_text("from the host\n")
    paths.rw_dir.mkdir()
    paths.file.write_text("a host file\n")
    paths.marker.write_text(f"host-only {secrets.token_hex(8)}\n")
    return paths


def own_pid(**security_context: object) -> dict:
    """A container config `linux` part with its own PID namespace and the given security context."""
    return {"security_context": {"namespace_options": {"pid": CONTAINER_NS}, **security_context}}


@pytest.fixture(scope="module")
def main_pod(probes: Probes, host_paths: HostPaths) -> Pod:
    ids = {"run_as_user": {"value": 1234}, "run_as_group": {"value": 5678}, "supplemental_groups": [1111, 2222]}
    return probes.run("probe", {"security_context": {"namespace_options": {"pid": CONTAINER_NS}}}, {
        "main": {
            "envs": [{"key": "VAR", "value": "a=b"}, {"key": "EMPTY", "value": ""},
                     {"key": "SPACED", "value": "one two"}],
            "mounts": [{"container_path": "/ro", "host_path": str(host_paths.ro_dir), "readonly": True},
                       {"container_path": "/rw", "host_path": str(host_paths.rw_dir)},
                       {"container_path": "/etc/host-file.txt", "host_path": str(host_paths.file)}],
            "linux": {"resources": {"memory_limit_in_bytes": MEMORY_LIMIT, "cpu_quota": 50000,
                                    "cpu_period": 100000, "cpuset_cpus": "0"},
                      **own_pid(readonly_rootfs=True, seccomp={"profile_type": RUNTIME_DEFAULT})}},
        "ids": {"linux": own_pid(**ids, no_new_privs=True, seccomp={"profile_type": UNCONFINED})},
        "capadd": {"linux": own_pid(capabilities={"add_capabilities": ["NET_ADMIN"]})},
        "capdrop": {"linux": own_pid(capabilities={"drop_capabilities": ["ALL"]})},
        "image-uid": {"image": {"image": USER_UID_IMAGE}, "linux": own_pid()},
        "image-username": {"image": {"image": USER_NAME_IMAGE}, "linux": own_pid()},
        "image-group": {"image": {"image": PREDEFINED_GROUP_IMAGE}, "linux": own_pid()},
    }, hostname="probe-host", dns_config=DNS)


@pytest.fixture(scope="module")
def privileged_pod(probes: Probes) -> Pod:
    return probes.run("privileged", {"security_context": {"privileged": True,
                                                          "namespace_options": {"pid": CONTAINER_NS}}},
                      {"root": {"linux": own_pid(privileged=True)}})


@pytest.fixture(scope="module")
def shared_pod(probes: Probes) -> Pod:
    """The CRI default: one PID namespace for the pod (with a pause process as its PID 1)."""
    return probes.run("shared", {}, {
        "alpha": {"command": ["sleep", "3601"]},
        "beta": {"command": ["sleep", "3602"]},
        "tracer": {"linux": {"security_context": {"capabilities": {"add_capabilities": ["SYS_PTRACE"]}}}},
    })


@pytest.fixture(scope="module")
def host_pod(probes: Probes) -> Pod:
    host = {"namespace_options": {"pid": NODE_NS, "network": NODE_NS}}
    return probes.run("hostns", {"security_context": host}, {"host": {"linux": {"security_context": host}}})


# --- identity files and DNS -------------------------------------------------------------------

def test_hostname_hosts_and_resolv_conf(pycrid: Daemon, main_pod: Pod) -> None:
    main = main_pod.containers["main"]
    assert out(pycrid, main, "hostname") == "probe-host"
    assert out(pycrid, main, "cat", "/etc/hostname") == "probe-host"
    hosts = [line.split() for line in out(pycrid, main, "cat", "/etc/hosts").splitlines()
             if line.strip() and not line.startswith("#")]
    assert [main_pod.ip, "probe-host"] in hosts
    assert ["127.0.0.1", "localhost"] in hosts
    resolv = [line for line in out(pycrid, main, "cat", "/etc/resolv.conf").splitlines() if line.strip()]
    assert sorted(resolv) == sorted(["nameserver 10.96.0.10", "nameserver 1.1.1.1",
                                     "search probe.svc.cluster.local cluster.local",
                                     "options ndots:5 timeout:2"])
    assert resolv.index("nameserver 10.96.0.10") < resolv.index("nameserver 1.1.1.1")
    addresses = out(pycrid, main, "ip", "-o", "-4", "addr", "show", "eth0")
    assert f"inet {main_pod.ip}/" in addresses


def test_env_merges_the_image_env_with_the_containers(pycrid: Daemon, main_pod: Pod) -> None:
    image_env = json.loads(crictl(pycrid, "inspecti", BUSYBOX).stdout)["info"]["imageSpec"]["config"]["Env"]
    image_path = next(e.split("=", 1)[1] for e in image_env if e.startswith("PATH="))
    env = dict(line.split("=", 1) for line in out(pycrid, main_pod.containers["main"], "env").splitlines())
    assert env["PATH"] == image_path
    assert env["HOSTNAME"] == "probe-host"
    assert env["VAR"] == "a=b"
    assert env["EMPTY"] == "" and env["SPACED"] == "one two"


# --- users and groups -------------------------------------------------------------------------

def test_run_as_user_group_and_supplemental_groups(pycrid: Daemon, main_pod: Pod) -> None:
    cid = main_pod.containers["ids"]
    assert out(pycrid, cid, "id", "-u") == "1234"
    assert out(pycrid, cid, "id", "-g") == "5678"
    assert status_field(pycrid, cid, "Uid").split() == ["1234"] * 4
    assert status_field(pycrid, cid, "Gid").split() == ["5678"] * 4
    assert {1111, 2222} <= groups(pycrid, cid)
    assert groups(pycrid, cid) <= {5678, 1111, 2222}


def test_the_image_user(pycrid: Daemon, main_pod: Pod) -> None:
    uid_only = main_pod.containers["image-uid"]
    assert (out(pycrid, uid_only, "id", "-u"), out(pycrid, uid_only, "id", "-g")) == ("1002", "0")
    named = main_pod.containers["image-username"]
    assert (out(pycrid, named, "id", "-u"), out(pycrid, named, "id", "-g")) == ("33", "33")
    assert out(pycrid, named, "id", "-un") == "www-data"
    grouped = main_pod.containers["image-group"]
    assert (out(pycrid, grouped, "id", "-u"), out(pycrid, grouped, "id", "-g")) == ("1000", "1000")
    assert 50000 in groups(pycrid, grouped)  # from the image's /etc/group


def test_the_primary_group_is_among_the_supplementary_groups(pycrid: Daemon, main_pod: Pod) -> None:
    assert groups(pycrid, main_pod.containers["ids"]) == {5678, 1111, 2222}
    assert groups(pycrid, main_pod.containers["image-group"]) == {1000, 50000}


# --- capabilities, no_new_privs, seccomp ------------------------------------------------------

def caps(daemon: Daemon, cid: str, field: str = "CapEff") -> int:
    return int(status_field(daemon, cid, field), 16)


def test_capabilities(pycrid: Daemon, main_pod: Pod, privileged_pod: Pod) -> None:
    main = main_pod.containers["main"]
    assert (caps(pycrid, main), caps(pycrid, main, "CapPrm"), caps(pycrid, main, "CapBnd")) == \
        (DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS)
    assert caps(pycrid, main, "CapInh") == 0 and caps(pycrid, main, "CapAmb") == 0
    assert caps(pycrid, main_pod.containers["capadd"]) == DEFAULT_CAPS | 1 << CAP_NET_ADMIN
    dropped = main_pod.containers["capdrop"]
    assert (caps(pycrid, dropped), caps(pycrid, dropped, "CapBnd")) == (0, 0)
    # A non-root user keeps no effective capabilities, as with runc (no ambient set).
    assert caps(pycrid, main_pod.containers["ids"]) == 0
    host_bounding = int(host_status_field(pycrid.process.pid, "CapBnd"), 16)
    assert host_bounding != DEFAULT_CAPS
    assert caps(pycrid, privileged_pod.containers["root"]) == host_bounding


def test_no_new_privs_and_seccomp(pycrid: Daemon, main_pod: Pod, privileged_pod: Pod) -> None:
    main, ids = main_pod.containers["main"], main_pod.containers["ids"]
    assert (status_field(pycrid, main, "NoNewPrivs"), status_field(pycrid, main, "Seccomp")) == ("0", "2")
    assert (status_field(pycrid, ids, "NoNewPrivs"), status_field(pycrid, ids, "Seccomp")) == ("1", "0")
    assert status_field(pycrid, privileged_pod.containers["root"], "Seccomp") == "0"


# --- mounts, masked and read-only paths, /dev -------------------------------------------------

def test_host_mounts(pycrid: Daemon, main_pod: Pod, host_paths: HostPaths) -> None:
    main = main_pod.containers["main"]
    assert out(pycrid, main, "cat", "/ro/existing") == "from the host"
    denied = execute(pycrid, main, "sh", "-c", "echo x > /ro/new")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert not (host_paths.ro_dir / "new").exists()
    assert "ro" in mount_options(pycrid, main, "/ro")

    out(pycrid, main, "sh", "-c", "echo written inside > /rw/from-container")
    assert (host_paths.rw_dir / "from-container").read_text() == "written inside\n"
    (host_paths.rw_dir / "from-host").write_text("written outside\n")
    assert out(pycrid, main, "cat", "/rw/from-host") == "written outside"
    assert "rw" in mount_options(pycrid, main, "/rw")

    assert out(pycrid, main, "cat", "/etc/host-file.txt") == "a host file"


def test_readonly_rootfs(pycrid: Daemon, main_pod: Pod) -> None:
    denied = execute(pycrid, main_pod.containers["main"], "touch", "/x")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert "ro" in mount_options(pycrid, main_pod.containers["main"], "/")
    writable = main_pod.containers["capadd"]  # the same image without readonly_rootfs
    out(pycrid, writable, "touch", "/x")
    assert out(pycrid, writable, "ls", "/x") == "/x"


def test_masked_and_readonly_proc_paths(pycrid: Daemon, main_pod: Pod, privileged_pod: Pod) -> None:
    main = main_pod.containers["main"]
    for path in ("/proc/timer_list", "/proc/keys"):
        assert Path(path).read_text(), f"{path} is empty on the host: the probe would prove nothing"
        assert out(pycrid, main, "cat", path) == "", f"{path} is not masked"
    denied = execute(pycrid, main, "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert "ro" in mount_options(pycrid, main, "/proc/sys")
    assert "ro" in mount_options(pycrid, main, "/sys")
    privileged = privileged_pod.containers["root"]
    assert len(out(pycrid, privileged, "cat", "/proc/timer_list").splitlines()) > 10  # nothing masked
    assert "rw" in mount_options(pycrid, privileged, "/sys")


def host_block_devices() -> list[str]:
    names = [d for d in os.listdir("/sys/block") if Path("/dev", d).exists()]
    assert names, "the host has no block devices in /dev: the probe would prove nothing"
    return names


def test_dev_has_the_default_devices_and_no_host_devices(pycrid: Daemon, main_pod: Pod) -> None:
    main = main_pod.containers["main"]
    listed = set(out(pycrid, main, "ls", "/dev").split())
    assert {"null", "zero", "random", "urandom", "full", "tty", "pts", "shm", "mqueue", "ptmx"} <= listed
    for name, major_minor in {"null": "1, 3", "zero": "1, 5", "random": "1, 8", "urandom": "1, 9",
                              "tty": "5, 0"}.items():
        line = out(pycrid, main, "ls", "-l", f"/dev/{name}")
        major, minor = major_minor.split(", ")
        assert line.startswith("c") and re.search(rf"\s{major},\s+{minor}\s", line), line
    assert not listed & set(host_block_devices())
    assert out(pycrid, main, "find", "/dev", "-type", "b") == ""
    assert "size=65536k" in mount_options(pycrid, main, "/dev/shm")
    out(pycrid, main, "sh", "-c", "echo shm > /dev/shm/probe")  # tmpfs, writable despite the read-only rootfs


def test_a_privileged_container_sees_the_host_devices(pycrid: Daemon, privileged_pod: Pod) -> None:
    listed = set(out(pycrid, privileged_pod.containers["root"], "ls", "/dev").split())
    assert set(host_block_devices()) <= listed


# --- cgroups ----------------------------------------------------------------------------------

def test_cgroup_limits_inside_and_on_the_host(pycrid: Daemon, main_pod: Pod) -> None:
    main = main_pod.containers["main"]
    # As the container sees them under /sys/fs/cgroup (its own cgroup there, on v1 and v2 alike):
    # file -> (controller, value).
    inside = {
        "memory.max": ("memory", str(MEMORY_LIMIT)),
        "cpu.max": ("cpu", "50000 100000"),
        "cpuset.cpus": ("cpuset", "0"),
    } if V2 else {
        "memory/memory.limit_in_bytes": ("memory", str(MEMORY_LIMIT)),
        "cpu/cpu.cfs_quota_us": ("cpu", "50000"),
        "cpu/cpu.cfs_period_us": ("cpu", "100000"),
        "cpuset/cpuset.cpus": ("cpuset", "0"),
    }
    for path, (_, expected) in inside.items():
        assert out(pycrid, main, "cat", f"/sys/fs/cgroup/{path}") == expected, path
    assert status_field(pycrid, main, "Cpus_allowed_list") == "0"
    pid = container_pid(pycrid, main)
    for path, (controller, expected) in inside.items():
        directory = process_cgroup(pid, controller)
        assert main in directory.name, directory
        name = path.rpartition("/")[2]
        assert (directory / name).read_text().strip() == expected, directory / name
    # It is in its own cgroup in every hierarchy (init joins them itself, runtime/cgroups/selfjoin.py).
    for controller in ("cpuacct", "pids", "blkio", "devices", "freezer"):
        assert main in process_cgroup(pid, controller).name, controller
    # The container sees its own cgroup, not the host's root: it lists its own process there.
    procs = "/sys/fs/cgroup/cgroup.procs" if V2 else "/sys/fs/cgroup/memory/cgroup.procs"
    assert "1" in out(pycrid, main, "cat", procs).split()


# --- namespaces -------------------------------------------------------------------------------

def processes(daemon: Daemon, cid: str) -> dict[int, str]:
    lines = out(daemon, cid, "ps", "-o", "pid,args").splitlines()[1:]
    return {int(pid): args for pid, _, args in (line.strip().partition(" ") for line in lines)}


def test_own_pid_namespace(pycrid: Daemon, main_pod: Pod) -> None:
    seen = processes(pycrid, main_pod.containers["main"])
    assert seen[1].strip() == "sleep 3600"
    assert [args.strip() for pid, args in seen.items() if pid != 1] == ["ps -o pid,args"]


def test_pod_pid_and_ipc_namespace_are_shared(pycrid: Daemon, shared_pod: Pod) -> None:
    alpha, beta = shared_pod.containers["alpha"], shared_pod.containers["beta"]
    in_alpha = set(processes(pycrid, alpha).values())
    assert {"sleep 3601", "sleep 3602"} <= {a.strip() for a in in_alpha}
    in_beta = {a.strip() for a in processes(pycrid, beta).values()}
    assert {"sleep 3601", "sleep 3602"} <= in_beta
    ipc = {out(pycrid, c, "readlink", "/proc/self/ns/ipc") for c in (alpha, beta)}
    assert len(ipc) == 1 and ipc != {os.readlink("/proc/self/ns/ipc")}
    out(pycrid, alpha, "sh", "-c", "echo from-alpha > /dev/shm/shared")
    assert out(pycrid, beta, "cat", "/dev/shm/shared") == "from-alpha"


def test_the_pause_process_does_not_expose_the_host_root(pycrid: Daemon, shared_pod: Pod,
                                                         host_paths: HostPaths) -> None:
    tracer = shared_pod.containers["tracer"]
    assert caps(pycrid, tracer) & 1 << 19  # CAP_SYS_PTRACE, so the probe is meaningful
    leaked = execute(pycrid, tracer, "cat", f"/proc/1/root{host_paths.marker}")
    assert host_paths.marker.read_text().strip() not in leaked.stdout


def test_host_pid_and_network_namespaces(pycrid: Daemon, host_pod: Pod, main_pod: Pod) -> None:
    host = host_pod.containers["host"]
    for pid in (1, os.getpid()):  # the host's init and this test process
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
        assert out(pycrid, host, "cat", f"/proc/{pid}/cmdline").replace("\0", " ").strip() == cmdline
    links = {line.split(":")[1].strip().split("@")[0] for line in out(pycrid, host, "ip", "-o", "link").splitlines()}
    assert pycrid.bridge in links and "lo" in links
    assert out(pycrid, host, "hostname") == socket.gethostname()
    pod_links = {line.split(":")[1].strip().split("@")[0]
                 for line in out(pycrid, main_pod.containers["main"], "ip", "-o", "link").splitlines()}
    assert pod_links == {"lo", "eth0"}
