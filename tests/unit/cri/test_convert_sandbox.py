"""PodSandboxConfig -> SandboxConfig, and the shared resources/seccomp/namespace converters."""
from __future__ import annotations

import pytest

from cri.api.v1 import api_pb2 as pb
from cri.convert_sandbox import resources, sandbox_config, seccomp
from runtime.cgroups.resources import Resources
from runtime.container.model import NamespaceMode, Seccomp
from runtime.errors import InvalidArgument
from runtime.network.plugin import DNS, PortMapping
from runtime.sandbox.model import SandboxConfig

META = pb.PodSandboxMetadata(name="web", uid="u-1", namespace="default", attempt=2)


def config(**kw) -> pb.PodSandboxConfig:
    kw.setdefault("metadata", META)
    return pb.PodSandboxConfig(**kw)


def linux(**sc) -> pb.LinuxPodSandboxConfig:
    return pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(**sc))


def test_minimal() -> None:
    # The CRI's zero NamespaceMode is POD, for PID too: a pod without namespace options shares one.
    assert sandbox_config(config(), "") == SandboxConfig(name="web", uid="u-1", namespace="default", attempt=2,
                                                         pid_mode=NamespaceMode.POD)


def test_everything() -> None:
    c = config(
        hostname="web-0", log_directory="/var/log/pods/default_web_u-1",
        dns_config=pb.DNSConfig(servers=["10.96.0.10", "fd00::a"], searches=["default.svc.cluster.local"],
                                options=["ndots:5"]),
        port_mappings=[pb.PortMapping(protocol=pb.UDP, container_port=53, host_port=5353, host_ip="127.0.0.1"),
                       pb.PortMapping(container_port=80), pb.PortMapping(protocol=pb.SCTP, container_port=9)],
        labels={"app": "web"}, annotations={"a": "b"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/podu-1",
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"},
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.POD, ipc=pb.POD),
                run_as_user=pb.Int64Value(value=65535), run_as_group=pb.Int64Value(value=0),
                readonly_rootfs=True, supplemental_groups=[1, 2], privileged=True,
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)),
            overhead=pb.LinuxContainerResources(cpu_shares=10),
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=1 << 30)),
    )
    assert sandbox_config(c, "runc") == SandboxConfig(
        name="web", uid="u-1", namespace="default", attempt=2, hostname="web-0",
        log_directory="/var/log/pods/default_web_u-1",
        dns=DNS(("10.96.0.10", "fd00::a"), ("default.svc.cluster.local",), ("ndots:5",)),
        port_mappings=(PortMapping("UDP", 53, 5353, "127.0.0.1"), PortMapping("TCP", 80, 0),
                       PortMapping("SCTP", 9, 0)),
        labels={"app": "web"}, annotations={"a": "b"}, cgroup_parent="/kubepods/podu-1",
        network_mode=NamespaceMode.POD, pid_mode=NamespaceMode.POD, ipc_mode=NamespaceMode.POD,
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"},
        privileged=True, run_as_user=65535, run_as_group=0, readonly_rootfs=True, supplemental_groups=(1, 2),
        seccomp=Seccomp("RuntimeDefault"), overhead=Resources(cpu_shares=10),
        resources=Resources(memory_limit_in_bytes=1 << 30), runtime_handler="runc",
    )


@pytest.mark.parametrize("opts, want", [
    (pb.NamespaceOption(), (NamespaceMode.POD, NamespaceMode.POD, NamespaceMode.POD)),
    (pb.NamespaceOption(network=pb.NODE, pid=pb.NODE, ipc=pb.NODE), (NamespaceMode.NODE,) * 3),
    (pb.NamespaceOption(pid=pb.CONTAINER), (NamespaceMode.POD, NamespaceMode.CONTAINER, NamespaceMode.POD)),
    (pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.NODE)), (NamespaceMode.POD,) * 3),
])
def test_namespace_modes(opts, want) -> None:
    s = sandbox_config(config(linux=linux(namespace_options=opts)), "")
    assert (s.network_mode, s.pid_mode, s.ipc_mode) == want


@pytest.mark.parametrize("c, message", [
    (config(metadata=pb.PodSandboxMetadata(uid="u", namespace="n")), "metadata.name"),
    (config(metadata=pb.PodSandboxMetadata(name="n", namespace="n")), "metadata.uid"),
    (config(metadata=pb.PodSandboxMetadata(name="n", uid="u")), "metadata.namespace"),
    (pb.PodSandboxConfig(), "metadata.name"),
    (config(port_mappings=[pb.PortMapping(protocol=7, container_port=80)]), "protocol 7"),  # type: ignore[arg-type]
    (config(port_mappings=[pb.PortMapping(container_port=70000)]), "container_port 70000"),
    (config(port_mappings=[pb.PortMapping(container_port=0)]), "container_port 0"),
    (config(port_mappings=[pb.PortMapping(container_port=80, host_port=-1)]), "host_port -1"),
    (config(port_mappings=[pb.PortMapping(container_port=80, host_port=65536)]), "host_port 65536"),
    (config(port_mappings=[pb.PortMapping(container_port=80, host_ip="localhost")]), "'localhost'"),
    (config(dns_config=pb.DNSConfig(servers=["8.8.8.8\nnameserver 1.2.3.4"])), "DNS server"),
    (config(dns_config=pb.DNSConfig(searches=["a b"])), "'a b'"),
    (config(dns_config=pb.DNSConfig(options=["ndots:5\nx"])), "DNS option"),
    (config(hostname="a\nb"), "hostname"),
    (config(hostname="h" * 65), "longer than 64"),
    (config(log_directory="var/log"), "'var/log'"),
    (config(linux=pb.LinuxPodSandboxConfig(sysctls={"kernel.core_pattern": "|/x"})), "kernel.core_pattern"),
    (config(linux=pb.LinuxPodSandboxConfig(sysctls={"kernel.shm_rmid_forced": "1+kernel.x=2"})),
     "kernel.shm_rmid_forced"),
    (config(linux=pb.LinuxPodSandboxConfig(
        sysctls={"net.ipv4.ip_forward": "1"},
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE)))),
     "net.ipv4.ip_forward.*host's network"),
    (config(linux=linux(namespace_options=pb.NamespaceOption(network=9))),  # type: ignore[arg-type]
     "network namespace mode 9"),
    (config(linux=linux(namespace_options=pb.NamespaceOption(pid=pb.TARGET))), "TARGET"),
    (config(linux=linux(namespace_options=pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.POD)))),
     "pod default/web: a user namespace needs exactly one uid mapping, got 0"),
    (config(linux=linux(run_as_user=pb.Int64Value(value=2**31))), "run_as_user 2147483648"),
    (config(linux=linux(run_as_user=pb.Int64Value(value=2**32 + 5))), "run_as_user 4294967301"),
    (config(linux=linux(run_as_user=pb.Int64Value(value=-1))), "run_as_user -1"),
    (config(linux=linux(run_as_group=pb.Int64Value(value=1))), "run_as_group 1 set without run_as_user"),
    (config(linux=linux(supplemental_groups=[2**31])), "supplemental group 2147483648"),
    (config(linux=linux(supplemental_groups_policy=5)), "unknown supplemental_groups_policy 5"),  # type: ignore[arg-type]
    (config(linux=linux(seccomp_profile_path="localhost/rel.json")), "'rel.json'"),
    (config(linux=pb.LinuxPodSandboxConfig(resources=pb.LinuxContainerResources(cpu_quota=5))), "cpu_quota 5"),
])
def test_refused(c, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        sandbox_config(c, "")


P = pb.SecurityProfile


@pytest.mark.parametrize("profile, path, want", [
    (None, "", None),
    (P(), "", Seccomp("RuntimeDefault")),  # present with the zero type: RuntimeDefault
    (P(profile_type=P.Unconfined), "", Seccomp("Unconfined")),
    (P(profile_type=P.Localhost, localhost_ref="/var/lib/kubelet/seccomp/a.json"), "",
     Seccomp("Localhost", "/var/lib/kubelet/seccomp/a.json")),
    (P(profile_type=P.Unconfined), "runtime/default", Seccomp("Unconfined")),  # the profile wins
    (None, "runtime/default", Seccomp("RuntimeDefault")),
    (None, "docker/default", Seccomp("RuntimeDefault")),
    (None, "unconfined", Seccomp("Unconfined")),
    (None, "localhost//var/lib/kubelet/seccomp/b.json", Seccomp("Localhost", "/var/lib/kubelet/seccomp/b.json")),
])
def test_seccomp(profile, path, want) -> None:
    assert seccomp(profile, path) == want


@pytest.mark.parametrize("profile, path, message", [
    (P(profile_type=P.Localhost), "", "Localhost profile ''"),
    (P(profile_type=P.Localhost, localhost_ref="a.json"), "", "'a.json'"),
    (P(profile_type=7), "", "type 7"),  # type: ignore[arg-type]
    (None, "bogus", "'bogus'"),
    (None, "localhost/", "Localhost profile ''"),
])
def test_seccomp_refused(profile, path, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        seccomp(profile, path)


def test_sandbox_seccomp_defaults_to_unconfined() -> None:
    assert sandbox_config(config(), "").seccomp == Seccomp("Unconfined")
    assert sandbox_config(config(linux=linux(seccomp_profile_path="runtime/default")), "").seccomp == \
        Seccomp("RuntimeDefault")


def test_resources() -> None:
    r = pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=1 << 28, oom_score_adj=-997,
        cpuset_cpus="0-1", cpuset_mems="0",
        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=1 << 21), pb.HugepageLimit(page_size="1GB", limit=0)],
        unified={"memory.high": "100M"}, memory_swap_limit_in_bytes=1 << 29)
    assert resources(r) == Resources(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=1 << 28, oom_score_adj=-997,
        cpuset_cpus="0-1", cpuset_mems="0", hugepage_limits={"2MB": 1 << 21, "1GB": 0},
        unified={"memory.high": "100M"}, memory_swap_limit_in_bytes=1 << 29)
    assert dict(resources(r).hugepage_limits) == {"2MB": 1 << 21, "1GB": 0}


@pytest.mark.parametrize("r, message", [
    (pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="2MB"),
                                                 pb.HugepageLimit(page_size="2MB")]), "'2MB': given twice"),
    (pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="huge")]), "'huge'"),
    (pb.LinuxContainerResources(unified={"cgroup.procs": "1"}), "cgroup.procs"),
    (pb.LinuxContainerResources(oom_score_adj=1001), "oom_score_adj 1001"),
    (pb.LinuxContainerResources(cpuset_cpus="0-1;rm"), "cpuset_cpus"),
])
def test_resources_refused(r, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resources(r)
