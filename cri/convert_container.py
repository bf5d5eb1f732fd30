"""ContainerConfig (protobuf) -> ContainerConfig (domain), validating what the wire lets through.

Decisions on fields proto3 cannot mark absent:
- masked_paths / readonly_paths: an empty list is "not given" (None: the runtime's defaults). On the
  wire an empty repeated field and an absent one are the same bytes, so "explicitly empty" cannot
  be sent; the kubelet sends the default lists for procMount Default, and only procMount Unmasked
  (which needs a user namespace) would mean empty: pycrid keeps the defaults even then, the safe
  reading.
- seccomp: neither SecurityProfile nor seccomp_profile_path -> Seccomp(kind=""), "not given", which
  runtime/container/spec.py resolves to the sandbox's profile.
What pycrid cannot do yet is refused rather than ignored: CDI devices. User namespace options and a
mount's id mappings are checked against the pod's when the container is created
(runtime/sandbox/userns.py). SELinux and AppArmor options are ignored (no LSM support; the kubelet
sends AppArmor only on nodes where it is enabled).
"""
from __future__ import annotations

from cri.api.v1 import api_pb2 as pb
from cri.convert_sandbox import id_mappings, ids, namespace_modes, optional_id, resources, seccomp, userns_options
from runtime.cgroups.resources import Resources
from runtime.container.model import (
    ContainerConfig,
    DeviceMapping,
    GroupsPolicy,
    Mount,
    NamespaceMode,
    Seccomp,
    SecurityContext,
)
from runtime.errors import InvalidArgument

_GROUPS_POLICY = {pb.Merge: GroupsPolicy.MERGE, pb.Strict: GroupsPolicy.STRICT}
_PROPAGATION = {pb.PROPAGATION_PRIVATE: "rprivate", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
                pb.PROPAGATION_BIDIRECTIONAL: "rshared"}


def container_config(c: pb.ContainerConfig) -> ContainerConfig:
    if not c.metadata.name:
        raise InvalidArgument("container config: metadata.name is empty")
    if not c.image.image:
        raise InvalidArgument(f"container {c.metadata.name!r}: image.image is empty")
    if c.CDI_devices:
        raise InvalidArgument(f"container {c.metadata.name!r}: CDI devices are not supported")
    linux = c.linux
    return ContainerConfig(
        name=c.metadata.name, attempt=c.metadata.attempt, image=c.image.image,
        user_image=c.image.user_specified_image,
        command=tuple(c.command), args=tuple(c.args), working_dir=c.working_dir,
        envs=tuple((kv.key, kv.value) for kv in c.envs),
        mounts=tuple(mount(m) for m in c.mounts),
        devices=tuple(DeviceMapping(d.container_path, d.host_path, d.permissions or "rwm")
                      for d in c.devices),
        labels=dict(c.labels), annotations=dict(c.annotations),
        log_path=c.log_path, stdin=c.stdin, stdin_once=c.stdin_once, tty=c.tty,
        resources=resources(linux.resources) if linux.HasField("resources") else Resources(),
        security=security_context(linux.security_context, c.metadata.name),
        stop_signal=stop_signal(c.stop_signal),
    )


def mount(m: pb.Mount) -> Mount:
    where = f"mount at {m.container_path!r}"
    if not m.container_path:
        raise InvalidArgument("mount: container_path is empty")
    propagation = _PROPAGATION.get(m.propagation)
    if propagation is None:
        raise InvalidArgument(f"{where}: unknown propagation {m.propagation}")
    image = m.image.image if m.HasField("image") else ""
    if not image and not m.host_path:
        raise InvalidArgument(f"{where}: host_path is empty")
    if image and m.host_path:
        raise InvalidArgument(f"{where}: an image volume ({image!r}) has no host_path, got {m.host_path!r}")
    if m.image_sub_path and not image:
        raise InvalidArgument(f"{where}: image_sub_path {m.image_sub_path!r} without an image")
    return Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly,
                 recursive_read_only=m.recursive_read_only, propagation=propagation, image=image,
                 uid_mappings=id_mappings(m.uidMappings), gid_mappings=id_mappings(m.gidMappings),
                 selinux_relabel=m.selinux_relabel, image_sub_path=m.image_sub_path)


def security_context(sc: pb.LinuxContainerSecurityContext, name: str) -> SecurityContext:
    who = f"container {name!r}"
    network, pid, ipc = namespace_modes(sc.namespace_options, who)
    target_id = sc.namespace_options.target_id
    if pid == NamespaceMode.TARGET and not target_id:
        raise InvalidArgument(f"{who}: PID namespace mode TARGET without a target_id")
    run_as_user = optional_id(sc, "run_as_user", f"{who}: run_as_user")
    run_as_group = optional_id(sc, "run_as_group", f"{who}: run_as_group")
    if run_as_user is not None and sc.run_as_username:
        raise InvalidArgument(f"{who}: run_as_user and run_as_username are both set")
    if run_as_group is not None and run_as_user is None and not sc.run_as_username:
        raise InvalidArgument(f"{who}: run_as_group {run_as_group} set without run_as_user or run_as_username")
    policy = _GROUPS_POLICY.get(sc.supplemental_groups_policy)
    if policy is None:
        raise InvalidArgument(f"{who}: unknown supplemental_groups_policy {sc.supplemental_groups_policy}")
    caps = sc.capabilities
    return SecurityContext(
        privileged=sc.privileged,
        capabilities_add=tuple(caps.add_capabilities),
        capabilities_drop=tuple(caps.drop_capabilities),
        capabilities_add_ambient=tuple(caps.add_ambient_capabilities),
        pid_mode=pid, ipc_mode=ipc, network_mode=network, target_id=target_id,
        run_as_user=run_as_user, run_as_group=run_as_group, run_as_username=sc.run_as_username,
        readonly_rootfs=sc.readonly_rootfs,
        supplemental_groups=ids(sc.supplemental_groups, f"{who}: supplemental group"),
        groups_policy=policy,
        no_new_privs=sc.no_new_privs,
        masked_paths=tuple(sc.masked_paths) or None,
        readonly_paths=tuple(sc.readonly_paths) or None,
        seccomp=seccomp(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path)
        or Seccomp(kind=""),
        userns=userns_options(sc.namespace_options, who),
    )


def signal_name(value: int) -> str:
    """A pb.Signal as the name an image's StopSignal would use: "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-2"."""
    try:
        name = pb.Signal.Name(value)
    except ValueError:
        raise InvalidArgument(f"stop_signal {value}: unknown signal") from None
    if name.startswith("SIGRTMINPLUS"):
        return "SIGRTMIN+" + name.removeprefix("SIGRTMINPLUS")
    if name.startswith("SIGRTMAXMINUS"):
        return "SIGRTMAX-" + name.removeprefix("SIGRTMAXMINUS")
    return name


def signal_enum(name: str) -> str:
    """The pb.Signal name for a signal name from signal_name() or runtime/container/stopsignal.py;
    RUNTIME_DEFAULT for none ("")."""
    if not name:
        return pb.Signal.Name(pb.RUNTIME_DEFAULT)
    return name.replace("SIGRTMIN+", "SIGRTMINPLUS").replace("SIGRTMAX-", "SIGRTMAXMINUS")


def stop_signal(value: int) -> str:
    """"" for RUNTIME_DEFAULT (the image's StopSignal, else SIGTERM, applies)."""
    return "" if value == pb.RUNTIME_DEFAULT else signal_name(value)
