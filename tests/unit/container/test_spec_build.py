"""build_init_spec: the whole InitSpec from a CRI config, an image and a sandbox, case by case."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runtime.cgroups.resources import Resources
from runtime.container.model import (
    ContainerConfig,
    DeviceMapping,
    Mount,
    NamespaceMode,
    Seccomp,
    SecurityContext,
)
from runtime.container.spec import build_init_spec
from runtime.container.volumes import volume_dir_name
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.image.config import ImageConfig
from runtime.linux.capabilities import CAPABILITIES, DEFAULT_CAPABILITIES
from runtime.linux.mounts import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from runtime.process.initspec import HOST, POD, TARGET_PREFIX, BindMount, Device, InitSpec, Namespaces, User
from runtime.sandbox.model import SandboxConfig, SandboxPaths

ALL_CAPS = frozenset(CAPABILITIES)
D = "/run/pycrid/sandboxes/s1"
PATHS = SandboxPaths(dir=D, netns=f"{D}/netns", ipcns=f"{D}/ipcns", utsns=f"{D}/utsns", pidns="",
                     hosts=f"{D}/hosts", resolv_conf=f"{D}/resolv.conf", hostname=f"{D}/hostname",
                     shm=f"{D}/shm")
HOST_PATHS = replace(PATHS, netns="", ipcns="", utsns="", shm="")
SANDBOX = SandboxConfig(name="pod", uid="u1", namespace="ns", hostname="pod-host",
                        log_directory="/var/log/pods/ns_pod_u1")
HOST_SANDBOX = replace(SANDBOX, network_mode=NamespaceMode.NODE, ipc_mode=NamespaceMode.NODE)
IMAGE = ImageConfig(user="", env=("PATH=/usr/bin:/bin", "LANG=C"), entrypoint=("/entry",),
                    cmd=("serve",), working_dir="/app", volumes=("/data",))
CONFIG = ContainerConfig(name="c", attempt=0, image="busybox", log_path="c/0.log")
VOLUMES = "/run/pycrid/containers/c1/volumes"
ETC = (BindMount(f"{D}/hosts", "/etc/hosts", is_file=True),
       BindMount(f"{D}/resolv.conf", "/etc/resolv.conf", is_file=True),
       BindMount(f"{D}/hostname", "/etc/hostname", is_file=True))
DATA = BindMount(f"{VOLUMES}/{volume_dir_name('/data')}", "/data")


def build(config: ContainerConfig = CONFIG, image: ImageConfig = IMAGE, sandbox: SandboxConfig = SANDBOX,
          paths: SandboxPaths = PATHS, **kw) -> InitSpec:
    args: dict[str, Any] = {
        "lowerdirs": ("/l2", "/l1"), "upperdir": "/c1/upper", "workdir": "/c1/work", "rootfs": "/c1/rootfs",
        "volumes_dir": VOLUMES, "cgroup": "/pycrid/pod/c1", "cgroup_v1_dirs": None, "exit_file": "/c1/exit",
        "state_dir": "/c1", "sandbox_log_dir": sandbox.log_directory, "bounding": ALL_CAPS,
        "recursive_readonly_supported": True,
    }
    args.update(kw)
    return build_init_spec("c1", config, image, sandbox, paths, **args)


def sec(**kw) -> ContainerConfig:
    return replace(CONFIG, security=SecurityContext(**kw))


def test_the_whole_spec_of_a_plain_container() -> None:
    assert build() == InitSpec(
        id="c1",
        args=("/entry", "serve"),
        env=("HOSTNAME=pod-host", "PATH=/usr/bin:/bin", "LANG=C"),
        cwd="/app",
        lowerdirs=("/l2", "/l1"), upperdir="/c1/upper", workdir="/c1/work", rootfs="/c1/rootfs",
        namespaces=Namespaces(net=f"{D}/netns", ipc=f"{D}/ipcns", uts=f"{D}/utsns", pid=""),
        user=User(),
        readonly_rootfs=False,
        mounts=(*ETC, DATA),
        devices=(),
        masked_paths=DEFAULT_MASKED_PATHS,
        readonly_paths=DEFAULT_READONLY_PATHS,
        shm_path=f"{D}/shm",
        hostname="",  # the pod's UTS namespace already has it
        capabilities=tuple(sorted(DEFAULT_CAPABILITIES)),
        no_new_privs=False, privileged=False,
        seccomp="Unconfined", seccomp_profile="",
        oom_score_adj=0,
        cgroup="/pycrid/pod/c1", cgroup_v1_dirs=None, cgroup_namespace=True,  # v2: no v1 dirs
        log_path="/var/log/pods/ns_pod_u1/c/0.log",
        exit_file="/c1/exit", state_dir="/c1",
        tty=False, stdin=False, stdin_once=False,
    )


@pytest.mark.parametrize("config, image, want_args, want_cwd", [
    (CONFIG, IMAGE, ("/entry", "serve"), "/app"),
    (replace(CONFIG, command=("/bin/sh",), args=("-c", "x")), IMAGE, ("/bin/sh", "-c", "x"), "/app"),
    (replace(CONFIG, args=("other",)), IMAGE, ("/entry", "other"), "/app"),
    (replace(CONFIG, working_dir="/w/"), IMAGE, ("/entry", "serve"), "/w"),
    (CONFIG, replace(IMAGE, working_dir=""), ("/entry", "serve"), "/"),
    (CONFIG, replace(IMAGE, working_dir="rel/dir"), ("/entry", "serve"), "/rel/dir"),
])
def test_args_and_cwd(config, image, want_args, want_cwd) -> None:
    spec = build(config, image)
    assert (spec.args, spec.cwd) == (want_args, want_cwd)


@pytest.mark.parametrize("config, image, sandbox, want", [
    (replace(CONFIG, envs=(("LANG", "en"), ("X", "1"))), IMAGE, SANDBOX,
     ("HOSTNAME=pod-host", "PATH=/usr/bin:/bin", "LANG=en", "X=1")),
    (replace(CONFIG, envs=(("HOSTNAME", "mine"),)), IMAGE, SANDBOX,
     ("HOSTNAME=mine", "PATH=/usr/bin:/bin", "LANG=C")),
    (CONFIG, replace(IMAGE, env=("HOSTNAME=img",)), SANDBOX, ("HOSTNAME=img",)),
    (CONFIG, IMAGE, replace(SANDBOX, hostname=""), ("PATH=/usr/bin:/bin", "LANG=C")),
])
def test_env(config, image, sandbox, want) -> None:
    assert build(config, image, sandbox).env == want


def test_two_containers_of_one_image_get_independent_envs() -> None:
    """CVE-2021-21334: nothing of the first container's env reaches the second."""
    image = ImageConfig(env=("PATH=/bin", "MODE=image"), cmd=("/run",))
    first = build(replace(CONFIG, envs=(("SECRET", "s3cr3t"), ("MODE", "first"))), image)
    second = build(replace(CONFIG, name="d", envs=(("OTHER", "o"),)), image)
    assert first.env == ("HOSTNAME=pod-host", "PATH=/bin", "MODE=first", "SECRET=s3cr3t")
    assert second.env == ("HOSTNAME=pod-host", "PATH=/bin", "MODE=image", "OTHER=o")
    assert image.env == ("PATH=/bin", "MODE=image")


@pytest.mark.parametrize("config, sandbox, paths, kw, want", [
    (CONFIG, SANDBOX, PATHS, {}, Namespaces(f"{D}/netns", f"{D}/ipcns", f"{D}/utsns", "")),
    (CONFIG, HOST_SANDBOX, HOST_PATHS, {}, Namespaces(HOST, HOST, HOST, "")),
    (CONFIG, replace(SANDBOX, network_mode=NamespaceMode.NODE), replace(PATHS, netns="", utsns=""), {},
     Namespaces(HOST, f"{D}/ipcns", HOST, "")),
    (CONFIG, replace(SANDBOX, ipc_mode=NamespaceMode.NODE), replace(PATHS, ipcns="", shm=""), {},
     Namespaces(f"{D}/netns", HOST, f"{D}/utsns", "")),
    (sec(pid_mode=NamespaceMode.NODE), SANDBOX, PATHS, {}, Namespaces(f"{D}/netns", f"{D}/ipcns", f"{D}/utsns", HOST)),
    # the pod monitor holds the pause's PID namespace and resolves a target: never a pid here
    (sec(pid_mode=NamespaceMode.POD), replace(SANDBOX, pid_mode=NamespaceMode.POD), PATHS, {},
     Namespaces(f"{D}/netns", f"{D}/ipcns", f"{D}/utsns", POD)),
    (sec(pid_mode=NamespaceMode.TARGET, target_id="t"), SANDBOX, PATHS, {},
     Namespaces(f"{D}/netns", f"{D}/ipcns", f"{D}/utsns", TARGET_PREFIX + "t")),
    # the container's own net/ipc modes do not take it out of the pod's namespaces
    (sec(network_mode=NamespaceMode.NODE, ipc_mode=NamespaceMode.NODE), SANDBOX, PATHS, {},
     Namespaces(f"{D}/netns", f"{D}/ipcns", f"{D}/utsns", "")),
])
def test_namespaces(config, sandbox, paths, kw, want) -> None:
    assert build(config, sandbox=sandbox, paths=paths, **kw).namespaces == want


@pytest.mark.parametrize("config, sandbox, paths, kw, error, message", [
    (sec(pid_mode=NamespaceMode.TARGET), SANDBOX, PATHS, {}, InvalidArgument, "TARGET needs a target"),
    (sec(pid_mode=NamespaceMode.POD), SANDBOX, PATHS, {}, FailedPrecondition, "shared PID"),
    (CONFIG, SANDBOX, replace(PATHS, netns=""), {}, FailedPrecondition, "network"),
    (CONFIG, SANDBOX, replace(PATHS, ipcns=""), {}, FailedPrecondition, "IPC"),
])
def test_namespaces_refused(config, sandbox, paths, kw, error, message) -> None:
    with pytest.raises(error, match=message):
        build(config, sandbox=sandbox, paths=paths, **kw)


@pytest.mark.parametrize("sandbox, paths, want", [
    (SANDBOX, PATHS, f"{D}/shm"),
    (replace(SANDBOX, ipc_mode=NamespaceMode.NODE), replace(PATHS, ipcns="", shm=""), "/dev/shm"),
])
def test_shm(sandbox, paths, want) -> None:
    assert build(sandbox=sandbox, paths=paths).shm_path == want


def test_mount_order_etc_files_then_volumes_then_cri_mounts() -> None:
    config = replace(CONFIG, mounts=(Mount("/cfg", "/host/cfg", readonly=True, propagation="rslave"),
                                     Mount("/z", "/host/z")))
    assert build(config, replace(IMAGE, volumes=("/data", "/cache"))).mounts == (
        *ETC,
        BindMount(f"{VOLUMES}/{volume_dir_name('/cache')}", "/cache"),
        DATA,
        BindMount("/host/cfg", "/cfg", readonly=True, propagation="rslave"),
        BindMount("/host/z", "/z"),
    )


def test_cri_mounts_replace_etc_files_and_volumes_they_target() -> None:
    config = replace(CONFIG, mounts=(Mount("/etc/hosts", "/kubelet/etc-hosts"), Mount("/data", "/pv")))
    assert build(config).mounts == (ETC[1], ETC[2], BindMount("/kubelet/etc-hosts", "/etc/hosts"),
                                    BindMount("/pv", "/data"))


def test_recursive_readonly_mounts_only_where_the_kernel_has_mount_setattr() -> None:
    config = replace(CONFIG, mounts=(Mount("/tree", "/host/tree", readonly=True, recursive_read_only=True),))
    assert build(config).mounts[-1] == BindMount("/host/tree", "/tree", readonly=True, recursive_readonly=True)
    with pytest.raises(InvalidArgument, match="container 'c': mount at /tree: .*mount_setattr"):
        build(config, recursive_readonly_supported=False)


def test_etc_files_are_readonly_with_a_readonly_rootfs() -> None:
    spec = build(sec(readonly_rootfs=True), replace(IMAGE, volumes=()))
    assert spec.readonly_rootfs is True
    assert spec.mounts == tuple(replace(m, readonly=True) for m in ETC)


def test_host_network_pod_binds_the_resolv_conf_the_sandbox_prepared() -> None:
    paths = replace(HOST_PATHS, resolv_conf=f"{D}/resolv.conf")
    assert build(sandbox=HOST_SANDBOX, paths=paths, image=replace(IMAGE, volumes=())).mounts == ETC


def test_devices() -> None:
    config = replace(CONFIG, devices=(DeviceMapping("/dev/fuse", "/dev/fuse", "rw"),
                                      DeviceMapping("", "/dev/null", ""),
                                      DeviceMapping("/dev/xx", "/dev/sda1", "mrw")))
    assert build(config).devices == (Device("/dev/fuse", "/dev/fuse", "rw"), Device("/dev/null", "/dev/null", "rwm"),
                                     Device("/dev/sda1", "/dev/xx", "mrw"))


@pytest.mark.parametrize("device, message", [
    (DeviceMapping("/dev/x", "dev/x"), "'dev/x'"),
    (DeviceMapping("/dev/x", "/dev/x", "rwx"), "'rwx'"),
    (DeviceMapping("/dev/../etc", "/dev/null"), r"'/dev/\.\./etc'"),
])
def test_devices_refused(device, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build(replace(CONFIG, devices=(device,)))


@pytest.mark.parametrize("config, sandbox, masked, readonly", [
    (CONFIG, SANDBOX, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS),
    (sec(masked_paths=("/proc/kcore",), readonly_paths=("/proc/sys",)), SANDBOX, ("/proc/kcore",), ("/proc/sys",)),
    (sec(masked_paths=(), readonly_paths=()), SANDBOX, (), ()),
    (sec(privileged=True), replace(SANDBOX, privileged=True), (), ()),
    (sec(privileged=True, masked_paths=("/proc/kcore",)), replace(SANDBOX, privileged=True), (), ()),
])
def test_masked_and_readonly_paths(config, sandbox, masked, readonly) -> None:
    spec = build(config, sandbox=sandbox)
    assert (spec.masked_paths, spec.readonly_paths) == (masked, readonly)


@pytest.mark.parametrize("config, bounding, want", [
    (CONFIG, ALL_CAPS, sorted(DEFAULT_CAPABILITIES)),
    (sec(capabilities_add=("NET_ADMIN",), capabilities_drop=("MKNOD", "CAP_KILL")), ALL_CAPS,
     sorted(DEFAULT_CAPABILITIES - {"CAP_MKNOD", "CAP_KILL"} | {"CAP_NET_ADMIN"})),
    (sec(capabilities_drop=("ALL",), capabilities_add=("CHOWN",)), ALL_CAPS, ["CAP_CHOWN"]),
    (sec(capabilities_drop=("ALL",), capabilities_add_ambient=("CAP_NET_BIND_SERVICE",)), ALL_CAPS,
     ["CAP_NET_BIND_SERVICE"]),
    (sec(capabilities_add=("SYS_ADMIN",)), frozenset({"CAP_CHOWN"}), ["CAP_CHOWN"]),  # bounded
])
def test_capabilities(config, bounding, want) -> None:
    assert build(config, bounding=bounding).capabilities == tuple(want)


def test_privileged_gets_the_bounding_set_unconfined() -> None:
    config = sec(privileged=True, seccomp=Seccomp("RuntimeDefault"), capabilities_drop=("ALL",))
    spec = build(config, sandbox=replace(SANDBOX, privileged=True),
                 bounding=frozenset({"CAP_SYS_ADMIN", "CAP_CHOWN"}))
    assert (spec.capabilities, spec.privileged, spec.seccomp) == (("CAP_CHOWN", "CAP_SYS_ADMIN"), True, "Unconfined")


def test_privileged_container_needs_a_privileged_sandbox() -> None:
    with pytest.raises(InvalidArgument, match="privileged, but its sandbox is not"):
        build(sec(privileged=True))


@pytest.mark.parametrize("container, sandbox, want", [
    (Seccomp(""), Seccomp("RuntimeDefault"), ("RuntimeDefault", "")),
    (Seccomp("Unconfined"), Seccomp("RuntimeDefault"), ("Unconfined", "")),
    (Seccomp("Localhost", "/var/lib/kubelet/seccomp/p.json"), Seccomp("Unconfined"),
     ("Localhost", "/var/lib/kubelet/seccomp/p.json")),
])
def test_seccomp(container, sandbox, want) -> None:
    spec = build(sec(seccomp=container), sandbox=replace(SANDBOX, seccomp=sandbox))
    assert (spec.seccomp, spec.seccomp_profile) == want


@pytest.mark.parametrize("config, want", [
    (sec(run_as_user=1000, run_as_group=3000, supplemental_groups=(4000,)),
     User(uid=1000, gid=3000, additional_gids=(4000, 2000))),
    (sec(run_as_username="app"), User(username="app", additional_gids=(2000,))),
    (CONFIG, User(uid=65534, gid=65534, additional_gids=(2000,))),
])
def test_user(config, want) -> None:
    spec = build(config, replace(IMAGE, user="65534:65534"), replace(SANDBOX, supplemental_groups=(2000,)))
    assert spec.user == want


def test_passes_through_what_init_needs_as_is() -> None:
    config = replace(CONFIG, tty=True, stdin=True, stdin_once=True, resources=Resources(oom_score_adj=-997),
                     security=SecurityContext(no_new_privs=True, readonly_rootfs=True))
    spec = build(config, cgroup_v1_dirs={"memory": "/sys/fs/cgroup/memory/pycrid/c1"})
    assert (spec.tty, spec.stdin, spec.stdin_once, spec.oom_score_adj, spec.no_new_privs, spec.readonly_rootfs,
            spec.cgroup_v1_dirs) == (True, True, True, -997, True, True, {"memory": "/sys/fs/cgroup/memory/pycrid/c1"})


def test_the_spec_survives_the_fork_server_socket() -> None:
    spec = build(replace(CONFIG, mounts=(Mount("/m", "/h"),), devices=(DeviceMapping("/dev/null", "/dev/null"),)),
                 cgroup_v1_dirs={"cpu": "/x"})
    assert InitSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("config, image, kw, message", [
    (replace(CONFIG, log_path="../../etc/x"), IMAGE, {}, r"'\.\./\.\./etc/x'"),
    (replace(CONFIG, log_path="/etc/cron.d/x"), IMAGE, {}, "'/etc/cron.d/x'"),
    (CONFIG, replace(IMAGE, volumes=("../../x",)), {}, r"'\.\./\.\./x'"),
    (sec(run_as_user=2**31), IMAGE, {}, "2147483648"),
    (sec(run_as_user=2**32 + 5), IMAGE, {}, "4294967301"),
    (CONFIG, replace(IMAGE, user="4294967301"), {}, "4294967301"),
    (replace(CONFIG, working_dir="rel"), IMAGE, {}, "'rel'"),
    (CONFIG, replace(IMAGE, entrypoint=(), cmd=()), {}, "no command specified"),
    (sec(masked_paths=("proc/kcore",)), IMAGE, {}, "'proc/kcore'"),
])
def test_hostile_and_invalid_inputs(config, image, kw, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build(config, image, **kw)


def test_no_log_path_without_a_log_directory() -> None:
    assert build(sandbox_log_dir="").log_path == ""
