"""ContainerConfig (protobuf) -> ContainerConfig (domain)."""
from __future__ import annotations

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.convert_container import container_config, mount, signal_enum, signal_name, stop_signal
from runtime.cgroups.resources import Resources
from runtime.container import stopsignal
from runtime.container.model import (
    ContainerConfig,
    DeviceMapping,
    GroupsPolicy,
    IdMapping,
    Mount,
    NamespaceMode,
    Seccomp,
    SecurityContext,
    UsernsOptions,
)
from runtime.errors import InvalidArgument

META = pb.ContainerMetadata(name="app", attempt=1)
IMAGE = pb.ImageSpec(image="docker.io/library/busybox:1.36")
# What converting an empty security context yields: the CRI's zero modes are POD, seccomp not given.
SEC = SecurityContext(pid_mode=NamespaceMode.POD, ipc_mode=NamespaceMode.POD, network_mode=NamespaceMode.POD,
                      seccomp=Seccomp(""))


def config(**kw) -> pb.ContainerConfig:
    kw.setdefault("metadata", META)
    kw.setdefault("image", IMAGE)
    return pb.ContainerConfig(**kw)


def with_sc(**sc) -> pb.ContainerConfig:
    return config(linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(**sc)))


def test_minimal() -> None:
    assert container_config(config()) == ContainerConfig(name="app", attempt=1, image="docker.io/library/busybox:1.36",
                                                         security=SEC)


def test_everything() -> None:
    c = config(
        command=["/bin/sh"], args=["-c", "echo hi"], working_dir="/w",
        envs=[pb.KeyValue(key="B", value="2"), pb.KeyValue(key="A", value="x=y"), pb.KeyValue(key="B", value="3")],
        mounts=[pb.Mount(container_path="/data", host_path="/var/lib/kubelet/pods/u/volumes/d", readonly=True,
                         propagation=pb.PROPAGATION_HOST_TO_CONTAINER, selinux_relabel=True)],
        devices=[pb.Device(container_path="/dev/fuse", host_path="/dev/fuse", permissions="rw")],
        labels={"l": "1"}, annotations={"a": "2"}, log_path="app/1.log", stdin=True, stdin_once=True, tty=True,
        stop_signal=pb.SIGQUIT,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(cpu_shares=2, memory_limit_in_bytes=1 << 26, oom_score_adj=1000),
            security_context=pb.LinuxContainerSecurityContext(
                capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["ALL"],
                                           add_ambient_capabilities=["CAP_NET_BIND_SERVICE"]),
                privileged=False,
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.TARGET, ipc=pb.NODE, target_id="t1"),
                run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=2000),
                readonly_rootfs=True, supplemental_groups=[3000, 3001], no_new_privs=True,
                masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref="/s/p.json"))),
    )
    assert container_config(c) == ContainerConfig(
        name="app", attempt=1, image="docker.io/library/busybox:1.36",
        command=("/bin/sh",), args=("-c", "echo hi"), working_dir="/w",
        envs=(("B", "2"), ("A", "x=y"), ("B", "3")),
        mounts=(Mount("/data", "/var/lib/kubelet/pods/u/volumes/d", readonly=True, propagation="rslave",
                      selinux_relabel=True),),
        devices=(DeviceMapping("/dev/fuse", "/dev/fuse", "rw"),),
        labels={"l": "1"}, annotations={"a": "2"}, log_path="app/1.log", stdin=True, stdin_once=True, tty=True,
        resources=Resources(cpu_shares=2, memory_limit_in_bytes=1 << 26, oom_score_adj=1000),
        security=SecurityContext(
            privileged=False, capabilities_add=("NET_ADMIN",), capabilities_drop=("ALL",),
            capabilities_add_ambient=("CAP_NET_BIND_SERVICE",),
            pid_mode=NamespaceMode.TARGET, ipc_mode=NamespaceMode.NODE, network_mode=NamespaceMode.NODE,
            target_id="t1", run_as_user=1000, run_as_group=2000, readonly_rootfs=True,
            supplemental_groups=(3000, 3001), no_new_privs=True, masked_paths=("/proc/kcore",),
            readonly_paths=("/proc/sys",), seccomp=Seccomp("Localhost", "/s/p.json")),
        stop_signal="SIGQUIT",
    )


@pytest.mark.parametrize("sc, want", [
    ({}, SEC),
    ({"run_as_username": "www", "run_as_group": pb.Int64Value(value=0)},
     SecurityContext(run_as_username="www", run_as_group=0, pid_mode=NamespaceMode.POD, seccomp=Seccomp(""))),
    ({"run_as_user": pb.Int64Value(value=0)},  # uid 0 is set, not absent
     SecurityContext(run_as_user=0, pid_mode=NamespaceMode.POD, seccomp=Seccomp(""))),
    ({"namespace_options": pb.NamespaceOption(pid=pb.CONTAINER)}, SecurityContext(seccomp=Seccomp(""))),
    ({"privileged": True}, SecurityContext(privileged=True, pid_mode=NamespaceMode.POD, seccomp=Seccomp(""))),
    ({"seccomp_profile_path": "runtime/default"},
     SecurityContext(pid_mode=NamespaceMode.POD, seccomp=Seccomp("RuntimeDefault"))),
    ({"seccomp": pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined)},
     SecurityContext(pid_mode=NamespaceMode.POD, seccomp=Seccomp("Unconfined"))),
    # empty masked/readonly lists: not given, the runtime's defaults (None)
    ({"masked_paths": [], "readonly_paths": []}, SEC),
    ({"namespace_options": pb.NamespaceOption(pid=pb.CONTAINER,
                                              userns_options=pb.UserNamespace(mode=pb.NODE))},
     SecurityContext(seccomp=Seccomp(""), userns=UsernsOptions(NamespaceMode.NODE))),
    # passed on as sent: checked against the pod's when the container is created
    ({"namespace_options": pb.NamespaceOption(pid=pb.CONTAINER, userns_options=pb.UserNamespace(
        mode=pb.POD, uids=[pb.IDMapping(host_id=1000, length=10)], gids=[pb.IDMapping(host_id=2000, length=5)]))},
     SecurityContext(seccomp=Seccomp(""), userns=UsernsOptions(NamespaceMode.POD, (IdMapping(0, 1000, 10),),
                                                               (IdMapping(0, 2000, 5),)))),
    ({"supplemental_groups_policy": pb.Merge}, SEC),
    ({"supplemental_groups_policy": pb.Strict, "supplemental_groups": [1234]},
     SecurityContext(supplemental_groups=(1234,), groups_policy=GroupsPolicy.STRICT, pid_mode=NamespaceMode.POD,
                     seccomp=Seccomp(""))),
])
def test_security_context(sc, want) -> None:
    assert container_config(with_sc(**sc)).security == want


@pytest.mark.parametrize("m, want", [
    (pb.Mount(container_path="/a", host_path="/h"), Mount("/a", "/h")),
    (pb.Mount(container_path="/a", host_path="/h", propagation=pb.PROPAGATION_BIDIRECTIONAL),
     Mount("/a", "/h", propagation="rshared")),
    (pb.Mount(container_path="/a", host_path="/h", readonly=True, recursive_read_only=True),
     Mount("/a", "/h", readonly=True, recursive_read_only=True)),
    # Carried as asked: the runtime's spec builder decides (runtime/container/rro.py).
    (pb.Mount(container_path="/a", host_path="/h", recursive_read_only=True,
              propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
     Mount("/a", "/h", recursive_read_only=True, propagation="rslave")),
    (pb.Mount(container_path="/a", image=pb.ImageSpec(image="ref:1")), Mount("/a", "", image="ref:1")),
    (pb.Mount(container_path="/a", host_path="/h", uidMappings=[pb.IDMapping(host_id=7, length=1)],
              gidMappings=[pb.IDMapping(host_id=8, length=2)]),
     Mount("/a", "/h", uid_mappings=(IdMapping(0, 7, 1),), gid_mappings=(IdMapping(0, 8, 2),))),
    (pb.Mount(container_path="/a", readonly=True, image=pb.ImageSpec(image="sha256:" + "b" * 64),
              image_sub_path="etc/ssl"),
     Mount("/a", "", readonly=True, image="sha256:" + "b" * 64, image_sub_path="etc/ssl")),
])
def test_mount(m, want) -> None:
    assert mount(m) == want


@pytest.mark.parametrize("m, message", [
    (pb.Mount(container_path="/a", host_path="/h", propagation=5), "unknown propagation 5"),  # type: ignore[arg-type]
    (pb.Mount(host_path="/h"), "container_path is empty"),
    (pb.Mount(container_path="/a"), "'/a'.*host_path is empty"),
    (pb.Mount(container_path="/a", host_path="/h", image=pb.ImageSpec(image="ref:1")),
     "an image volume \\('ref:1'\\) has no host_path, got '/h'"),
    (pb.Mount(container_path="/a", host_path="/h", image_sub_path="etc"), "image_sub_path 'etc' without an image"),
])
def test_mount_refused(m, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        mount(m)


@pytest.mark.parametrize("c, message", [
    (config(metadata=pb.ContainerMetadata()), "metadata.name is empty"),
    (pb.ContainerConfig(image=IMAGE), "metadata.name is empty"),
    (config(image=pb.ImageSpec()), "'app': image.image is empty"),
    (config(CDI_devices=[pb.CDIDevice(name="vendor.com/gpu=0")]), "CDI"),
    (config(stop_signal=999), "stop_signal 999"),
    (with_sc(run_as_user=pb.Int64Value(value=2**31)), "run_as_user 2147483648"),
    (with_sc(run_as_user=pb.Int64Value(value=2**32 + 5)), "run_as_user 4294967301"),
    (with_sc(run_as_group=pb.Int64Value(value=1), run_as_user=pb.Int64Value(value=-5)), "run_as_user -5"),
    (with_sc(run_as_user=pb.Int64Value(value=1), run_as_group=pb.Int64Value(value=2**31)), "run_as_group 2147483648"),
    (with_sc(supplemental_groups=[2**32 + 5]), "supplemental group 4294967301"),
    (with_sc(run_as_group=pb.Int64Value(value=1)), "run_as_group 1 set without"),
    (with_sc(run_as_user=pb.Int64Value(value=1), run_as_username="x"), "both set"),
    (with_sc(namespace_options=pb.NamespaceOption(pid=pb.TARGET)), "TARGET without a target_id"),
    (with_sc(namespace_options=pb.NamespaceOption(ipc=8)), "IPC namespace mode 8"),  # type: ignore[arg-type]
    (with_sc(namespace_options=pb.NamespaceOption(userns_options=pb.UserNamespace(mode=7))),  # type: ignore[arg-type]
     "container 'app': user namespace mode 7: unknown"),
    (with_sc(supplemental_groups_policy=7), "unknown supplemental_groups_policy 7"),  # type: ignore[arg-type]
    (with_sc(seccomp_profile_path="localhost/x.json"), "'x.json'"),
    (with_sc(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost)), "Localhost profile ''"),
    (config(linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(cpu_period=10))), "cpu_period 10"),
])
def test_refused(c, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        container_config(c)


@pytest.mark.parametrize("value, want", [
    (pb.RUNTIME_DEFAULT, ""),
    (pb.SIGTERM, "SIGTERM"),
    (pb.SIGKILL, "SIGKILL"),
    (pb.SIGUSR1, "SIGUSR1"),
    (pb.SIGRTMIN, "SIGRTMIN"),
    (pb.SIGRTMINPLUS3, "SIGRTMIN+3"),
    (pb.SIGRTMAXMINUS2, "SIGRTMAX-2"),
    (pb.SIGRTMAX, "SIGRTMAX"),
])
def test_stop_signal(value, want) -> None:
    assert stop_signal(value) == want


def test_every_named_signal_converts() -> None:
    for name, value in pb.Signal.items():
        assert signal_name(value).startswith("SIG") or name == "RUNTIME_DEFAULT"


def test_every_signal_name_maps_back_to_its_enum() -> None:
    for name, value in pb.Signal.items():
        assert signal_enum(stop_signal(value)) == name


def test_every_stop_signal_the_runtime_decides_is_a_cri_signal() -> None:
    for number in [n for n in range(1, 65) if n not in (32, 33)]:
        name = stopsignal.signal_name(number)
        assert name is not None and pb.Signal.Value(signal_enum(name)) != pb.RUNTIME_DEFAULT
