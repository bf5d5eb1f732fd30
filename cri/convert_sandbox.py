"""PodSandboxConfig (protobuf) -> SandboxConfig (domain), validating what the wire lets through.

Also the pieces shared with containers: resources, seccomp, namespace modes, ids.
Proto3 cannot tell an absent scalar from its zero value; message fields (Int64Value, SecurityProfile,
LinuxContainerResources) can be tested with HasField and are, where absence means something.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from cri.api.v1 import api_pb2 as pb
from runtime.cgroups.resources import Resources
from runtime.container.model import IdMapping, NamespaceMode, Seccomp, UsernsOptions
from runtime.container.spec import validate_sysctls
from runtime.container.users import check_id
from runtime.errors import InvalidArgument
from runtime.network.plugin import DNS, PortMapping
from runtime.sandbox.model import SandboxConfig
from runtime.sandbox.userns import pod_user_namespace

HOST_NAME_MAX = 64
_PROTOCOLS = {pb.TCP: "TCP", pb.UDP: "UDP", pb.SCTP: "SCTP"}
_PROFILE = pb.SecurityProfile.ProfileType


def sandbox_config(c: pb.PodSandboxConfig, runtime_handler: str) -> SandboxConfig:
    m = c.metadata
    for field in ("name", "uid", "namespace"):
        if not getattr(m, field):
            raise InvalidArgument(f"sandbox config: metadata.{field} is empty")
    linux = c.linux
    sc = linux.security_context
    network, pid, ipc = namespace_modes(sc.namespace_options, "sandbox")
    if pid == NamespaceMode.TARGET:
        raise InvalidArgument("sandbox config: PID namespace mode TARGET is only for containers")
    run_as_user = optional_id(sc, "run_as_user", "run_as_user")
    run_as_group = optional_id(sc, "run_as_group", "run_as_group")
    if run_as_group is not None and run_as_user is None:
        raise InvalidArgument(f"sandbox config: run_as_group {run_as_group} set without run_as_user")
    # Merge or Strict: both are the pause's (it runs with no groups at all), and each container
    # carries its own policy, as the kubelet copies the pod's there.
    if sc.supplemental_groups_policy not in (pb.Merge, pb.Strict):
        raise InvalidArgument(f"sandbox config: unknown supplemental_groups_policy {sc.supplemental_groups_policy}")
    who = f"pod {m.namespace}/{m.name}"
    userns = pod_user_namespace(userns_options(sc.namespace_options, who), network=network, pid=pid, ipc=ipc,
                                privileged=sc.privileged, who=who)
    return SandboxConfig(
        name=m.name, uid=m.uid, namespace=m.namespace, attempt=m.attempt,
        hostname=hostname(c.hostname),
        log_directory=_log_directory(c.log_directory),
        dns=dns(c.dns_config),
        port_mappings=tuple(port_mapping(p) for p in c.port_mappings),
        labels=dict(c.labels), annotations=dict(c.annotations),
        cgroup_parent=_no_nul(linux.cgroup_parent, "cgroup_parent"),
        network_mode=network, pid_mode=pid, ipc_mode=ipc,
        sysctls=validate_sysctls(dict(linux.sysctls), network, ipc),
        privileged=sc.privileged,
        run_as_user=run_as_user, run_as_group=run_as_group,
        readonly_rootfs=sc.readonly_rootfs,
        supplemental_groups=ids(sc.supplemental_groups, "supplemental group"),
        seccomp=seccomp(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path)
        or Seccomp("Unconfined"),
        overhead=resources(linux.overhead) if linux.HasField("overhead") else Resources(),
        resources=resources(linux.resources) if linux.HasField("resources") else Resources(),
        runtime_handler=runtime_handler,
        userns=userns,
    )


def _no_nul(value: str, what: str) -> str:
    if "\0" in value:
        raise InvalidArgument(f"{what} {value!r} contains a NUL byte")
    return value


def _printable_token(value: str, what: str) -> str:
    """One word for a generated file (/etc/hosts, resolv.conf): no spaces, line breaks or controls."""
    if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidArgument(f"{what} {value!r}: must be one word without spaces or control characters")
    return value


def hostname(value: str) -> str:
    if not value:
        return ""
    if len(value) > HOST_NAME_MAX:
        raise InvalidArgument(f"hostname {value!r}: longer than {HOST_NAME_MAX} characters")
    return _printable_token(value, "hostname")


def _log_directory(value: str) -> str:
    if value and (not value.startswith("/") or "\0" in value):
        raise InvalidArgument(f"log_directory {value!r}: must be an absolute path")
    return value


def dns(d: pb.DNSConfig) -> DNS:
    for server in d.servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"DNS server {server!r}: not an IP address") from None
    return DNS(servers=tuple(d.servers),
               searches=tuple(_printable_token(s, "DNS search domain") for s in d.searches),
               options=tuple(_printable_token(o, "DNS option") for o in d.options))


def port_mapping(p: pb.PortMapping) -> PortMapping:
    protocol = _PROTOCOLS.get(p.protocol)
    if protocol is None:
        raise InvalidArgument(f"port mapping: unknown protocol {p.protocol}")
    if not 1 <= p.container_port <= 65535:
        raise InvalidArgument(f"port mapping: container_port {p.container_port} is not in 1..65535")
    if not 0 <= p.host_port <= 65535:
        raise InvalidArgument(f"port mapping: host_port {p.host_port} is not in 0..65535")
    if p.host_ip:
        try:
            ipaddress.ip_address(p.host_ip)
        except ValueError:
            raise InvalidArgument(f"port mapping: host_ip {p.host_ip!r} is not an IP address") from None
    return PortMapping(protocol, p.container_port, p.host_port, p.host_ip)


def namespace_mode(value: int, what: str) -> NamespaceMode:
    try:
        return NamespaceMode(value)
    except ValueError:
        raise InvalidArgument(f"{what} namespace mode {value}: unknown") from None


def namespace_modes(opts: pb.NamespaceOption, who: str) -> tuple[NamespaceMode, NamespaceMode, NamespaceMode]:
    """(network, pid, ipc); the user namespace is userns_options'."""
    return (namespace_mode(opts.network, f"{who}: network"), namespace_mode(opts.pid, f"{who}: PID"),
            namespace_mode(opts.ipc, f"{who}: IPC"))


def id_mappings(mappings: Iterable[pb.IDMapping]) -> tuple[IdMapping, ...]:
    return tuple(IdMapping(container_id=m.container_id, host_id=m.host_id, length=m.length) for m in mappings)


def id_mapping_message(m: IdMapping) -> pb.IDMapping:
    """The other way, for statuses."""
    return pb.IDMapping(container_id=m.container_id, host_id=m.host_id, length=m.length)


def userns_options(opts: pb.NamespaceOption, who: str) -> UsernsOptions | None:
    """The UserNamespace as sent; None when absent (an older kubelet, or a client that leaves it out)."""
    if not opts.HasField("userns_options"):
        return None
    u = opts.userns_options
    return UsernsOptions(mode=namespace_mode(u.mode, f"{who}: user"), uids=id_mappings(u.uids),
                         gids=id_mappings(u.gids))


def optional_id(msg: object, field: str, what: str) -> int | None:
    """An Int64Value id field: None when absent, else checked against 0..2^31-1 (CVE-2024-40635)."""
    if not msg.HasField(field):  # type: ignore[attr-defined]
        return None
    return check_id(getattr(msg, field).value, what)


def ids(values: Iterable[int], what: str) -> tuple[int, ...]:
    return tuple(check_id(v, what) for v in values)


def seccomp(profile: pb.SecurityProfile | None, legacy_path: str) -> Seccomp | None:
    """The SecurityProfile when present, else the deprecated seccomp_profile_path; None when neither
    says anything (the caller decides what that means)."""
    if profile is not None:
        if profile.profile_type == _PROFILE.RuntimeDefault:
            return Seccomp("RuntimeDefault")
        if profile.profile_type == _PROFILE.Unconfined:
            return Seccomp("Unconfined")
        if profile.profile_type == _PROFILE.Localhost:
            return Seccomp("Localhost", _localhost(profile.localhost_ref))
        raise InvalidArgument(f"seccomp profile type {profile.profile_type}: unknown")
    if not legacy_path:
        return None
    if legacy_path in ("runtime/default", "docker/default"):
        return Seccomp("RuntimeDefault")
    if legacy_path == "unconfined":
        return Seccomp("Unconfined")
    if legacy_path.startswith("localhost/"):
        return Seccomp("Localhost", _localhost(legacy_path.removeprefix("localhost/")))
    raise InvalidArgument(f"seccomp_profile_path {legacy_path!r}: not runtime/default, docker/default, "
                          "unconfined or localhost/<path>")


def _localhost(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"seccomp Localhost profile {path!r}: must be an absolute path on the node")
    return path


def resources(r: pb.LinuxContainerResources) -> Resources:
    """LinuxContainerResources -> Resources (which validates itself, raising InvalidArgument)."""
    hugepages: dict[str, int] = {}
    for h in r.hugepage_limits:
        if h.page_size in hugepages:
            raise InvalidArgument(f"hugepage page size {h.page_size!r}: given twice")
        hugepages[h.page_size] = h.limit
    return Resources(
        cpu_period=r.cpu_period, cpu_quota=r.cpu_quota, cpu_shares=r.cpu_shares,
        memory_limit_in_bytes=r.memory_limit_in_bytes, oom_score_adj=r.oom_score_adj,
        cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems, hugepage_limits=hugepages,
        unified=dict(r.unified), memory_swap_limit_in_bytes=r.memory_swap_limit_in_bytes,
    )


def pod_resources(r: pb.LinuxContainerResources) -> Resources:
    """The pod-level totals of UpdatePodSandboxResources. The kubelet subtracts the overhead from
    the pod's totals even where they are unlimited (-1), and sends -1 minus the overhead: still
    unlimited, not an invalid limit."""
    totals = pb.LinuxContainerResources()
    totals.CopyFrom(r)
    for name in ("cpu_quota", "memory_limit_in_bytes"):
        if getattr(totals, name) < 0:
            setattr(totals, name, -1)
    return resources(totals)
