"""The container's InitSpec from its CRI config, its image and its sandbox: every decision between
the CRI request and the container process, made here, purely (no I/O), so it is tested table-driven
without root. The decisions follow containerd's CRI plugin unless a comment says otherwise.

Namespaces: net, ipc and uts are always the pod's (its pinned ones, or the host's for a host-network
/ host-IPC pod), as containerd does; a container cannot choose other ones. PID follows the
container's own mode: CONTAINER new, POD the pod's shared one, NODE the host's, TARGET another
container's (the caller resolves target_id to that container's pid). The user namespace is the
pod's (runtime/sandbox/userns.py); in one, the pod's own files (/etc/hosts, resolv.conf, hostname,
image VOLUMEs) and the CRI mounts the kubelet asks so are id-mapped, and init id-maps the image
layers, so that what the host owns as root the pod sees owned by its root.
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from runtime.container.command import check_exec_size, merge_command, merge_env
from runtime.container.imagemounts import NO_IMAGE_MOUNTS, ImageMountSources, image_mount
from runtime.container.model import (
    ContainerConfig,
    DeviceMapping,
    GroupsPolicy,
    Mount,
    NamespaceMode,
    Seccomp,
    SecurityContext,
    UserNamespace,
)
from runtime.container.rro import check_recursive_readonly
from runtime.container.sysctls import validate_sysctls
from runtime.container.users import check_id, parse_id, split_image_user
from runtime.container.volumes import image_volumes, log_path
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.image.config import ImageConfig
from runtime.linux.capabilities import capability_names, effective_capabilities
from runtime.linux.mounts import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from runtime.linux.seccomp_profile import ProfileKind
from runtime.process.initspec import HOST, POD, TARGET_PREFIX, BindMount, Device, InitSpec, Namespaces, User
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.userns import check_container, container_user_namespace, mount_idmapped

__all__ = ["build_init_spec", "container_user", "image_volumes", "log_path", "merge_command",
           "merge_env", "namespaces", "resolve_seccomp", "validate_mount", "validate_sysctls"]

PROPAGATIONS = ("rprivate", "rslave", "rshared")
SHM_HOST = "/dev/shm"  # a host-IPC container sees the host's /dev/shm, as with containerd


def build_init_spec(container_id: str, config: ContainerConfig, image: ImageConfig,
                    sandbox: SandboxConfig, paths: SandboxPaths, *, lowerdirs: Sequence[str],
                    upperdir: str, workdir: str, rootfs: str, volumes_dir: str, cgroup: str,
                    cgroup_v1_dirs: Mapping[str, str] | None, exit_file: str, state_dir: str,
                    sandbox_log_dir: str, bounding: frozenset[str],
                    recursive_readonly_supported: bool,
                    image_mounts: ImageMountSources = NO_IMAGE_MOUNTS) -> InitSpec:
    """``bounding``: this node's capability bounding set; ``recursive_readonly_supported``: its
    kernel has mount_setattr (runtime/linux/mountapi.py); ``image_mounts``: the image volumes'
    layers, resolved by the caller."""
    if not container_id:
        raise InvalidArgument("container id is empty")
    sec = config.security
    who = f"container {config.name!r}"
    if sec.privileged and not sandbox.privileged:
        raise InvalidArgument(f"{who}: privileged, but its sandbox is not")
    userns = container_user_namespace(sec.userns, sandbox.userns, who)
    check_container(userns, sec.privileged, sec.pid_mode == NamespaceMode.NODE, who)
    ns = replace(namespaces(sec, sandbox, paths), user=paths.userns if userns else "")
    cri_mounts = tuple(_cri_mount(m, config.name, recursive_readonly_supported, image_mounts, userns)
                       for m in config.mounts)
    cri_targets = tuple(m.target for m in cri_mounts)
    hostname_env = (f"HOSTNAME={sandbox.hostname}",) if sandbox.hostname else ()
    seccomp_kind, seccomp_profile = resolve_seccomp(sec.seccomp, sandbox.seccomp, sec.privileged)
    caps = effective_capabilities(sec.capabilities_add, sec.capabilities_drop, sec.privileged,
                                  sec.capabilities_add_ambient, bounding)
    args = merge_command(config.command, config.args, image.entrypoint, image.cmd)
    env = merge_env((*hostname_env, *image.env), config.envs)
    check_exec_size(args, env, f"container {config.name!r}")
    return InitSpec(
        id=container_id,
        args=args,
        env=env,
        cwd=_cwd(config.working_dir, image.working_dir),
        lowerdirs=tuple(lowerdirs), upperdir=upperdir, workdir=workdir, rootfs=rootfs,
        namespaces=ns,
        user=container_user(sec, image.user, sandbox.supplemental_groups),
        readonly_rootfs=sec.readonly_rootfs,
        mounts=(*(replace(m, idmap=userns is not None) for m in (
                    *_etc_mounts(paths, cri_targets, sec.readonly_rootfs),
                    *image_volumes(image.volumes, volumes_dir, cri_targets))),
                *cri_mounts),
        devices=tuple(_device(d) for d in config.devices),
        masked_paths=() if sec.privileged else _or_default(sec.masked_paths, DEFAULT_MASKED_PATHS),
        readonly_paths=() if sec.privileged else _or_default(sec.readonly_paths, DEFAULT_READONLY_PATHS),
        shm_path=_shm(ns.ipc, paths),
        hostname=sandbox.hostname if ns.uts == "" else "",
        capabilities=tuple(sorted(caps)),
        ambient_capabilities=tuple(sorted(capability_names(sec.capabilities_add_ambient) & caps)),
        no_new_privs=sec.no_new_privs,
        privileged=sec.privileged,
        seccomp=seccomp_kind,
        seccomp_profile=seccomp_profile,
        oom_score_adj=config.resources.oom_score_adj,
        cgroup=cgroup,
        cgroup_v1_dirs=dict(cgroup_v1_dirs) if cgroup_v1_dirs is not None else None,
        # v2 (no v1 dirs): the container's own cgroup namespace, as containerd and CRI-O give it.
        cgroup_namespace=bool(cgroup) and cgroup_v1_dirs is None,
        log_path=log_path(sandbox_log_dir, config.log_path),
        exit_file=exit_file,
        state_dir=state_dir,
        tty=config.tty,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        userns=userns,
    )


def _or_default(given: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if given is None:
        return default
    return tuple(_container_path(p, "masked or read-only path") for p in given)


def _cwd(config_dir: str, image_dir: str) -> str:
    """The config's directory must be absolute (the OCI rule); an image's relative WORKDIR is taken
    from the root. Either way it is only ever used inside the container, after pivot_root."""
    if config_dir:
        if not config_dir.startswith("/") or "\0" in config_dir:
            raise InvalidArgument(f"working_dir {config_dir!r}: must be an absolute path")
        return posixpath.normpath(config_dir)
    if image_dir and "\0" not in image_dir:
        return posixpath.normpath("/" + image_dir.lstrip("/"))
    return "/"


def _pod_namespace(host: bool, pinned: str, what: str) -> str:
    if host:
        return HOST
    if not pinned:
        raise FailedPrecondition(f"the sandbox has no {what} namespace pinned")
    return pinned


def namespaces(sec: SecurityContext, sandbox: SandboxConfig, paths: SandboxPaths) -> Namespaces:
    host_net = sandbox.network_mode == NamespaceMode.NODE
    host_ipc = sandbox.ipc_mode == NamespaceMode.NODE
    if sec.pid_mode == NamespaceMode.CONTAINER:
        pid = ""
    elif sec.pid_mode == NamespaceMode.NODE:
        pid = HOST
    elif sec.pid_mode == NamespaceMode.POD:
        if sandbox.pid_mode != NamespaceMode.POD:
            raise FailedPrecondition("the sandbox has no shared PID namespace")
        pid = POD
    else:
        if not sec.target_id:
            raise InvalidArgument("PID namespace mode TARGET needs a target container id")
        pid = TARGET_PREFIX + sec.target_id
    return Namespaces(net=_pod_namespace(host_net, paths.netns, "network"),
                      ipc=_pod_namespace(host_ipc, paths.ipcns, "IPC"),
                      uts=_pod_namespace(host_net, paths.utsns, "UTS"),
                      pid=pid)


def _shm(ipc: str, paths: SandboxPaths) -> str:
    if ipc == HOST:
        return SHM_HOST
    return paths.shm if ipc == paths.ipcns else ""


def container_user(sec: SecurityContext, image_user: str,
                   sandbox_groups: Iterable[int] = ()) -> User:
    """Who init runs the process as, by the CRI rules: run_as_user or run_as_username (never both)
    replace the image's USER; run_as_group needs one of them. From the image's USER, a numeric user
    is a uid and a name is looked up inside the rootfs; the group part, a gid or a name, replaces
    the user's primary group. The user's /etc/group memberships are added inside the rootfs too,
    unless the policy is Strict."""
    if sec.run_as_user is not None and sec.run_as_username:
        raise InvalidArgument(f"run_as_user {sec.run_as_user} and run_as_username "
                              f"{sec.run_as_username!r}: only one may be set")
    if sec.run_as_group is not None and sec.run_as_user is None and not sec.run_as_username:
        raise InvalidArgument(f"run_as_group {sec.run_as_group}: set without run_as_user or run_as_username")
    groups = tuple(dict.fromkeys(check_id(g, "supplemental gid")
                                 for g in (*sec.supplemental_groups, *sandbox_groups)))
    image_groups = sec.groups_policy is GroupsPolicy.MERGE
    if sec.run_as_user is not None or sec.run_as_username:
        uid = check_id(sec.run_as_user, "uid") if sec.run_as_user is not None else None
        gid = check_id(sec.run_as_group, "gid") if sec.run_as_group is not None else None
        return User(uid=uid, gid=gid, username=sec.run_as_username, additional_gids=groups,
                    image_groups=image_groups)
    user, group = split_image_user(image_user)
    uid, gid = parse_id(user), parse_id(group)
    uid = check_id(uid, "image uid") if uid is not None else None
    gid = check_id(gid, "image gid") if gid is not None else None
    return User(uid=uid, gid=gid, username="" if uid is not None else user,
                group="" if gid is not None else group, additional_gids=groups, image_groups=image_groups)


def resolve_seccomp(container: Seccomp, sandbox: Seccomp, privileged: bool) -> tuple[str, str]:
    """(kind, Localhost profile path). A container kind of "" means "not given" (the converter emits
    it when the CRI request has no seccomp at all) and falls back to the sandbox's; a privileged
    container is unconfined, as with containerd."""
    if privileged:
        return ProfileKind.UNCONFINED.value, ""
    chosen = container if container.kind else sandbox
    if not chosen.kind:
        return ProfileKind.UNCONFINED.value, ""
    try:
        kind = ProfileKind(chosen.kind)
    except ValueError:
        raise InvalidArgument(f"seccomp profile kind {chosen.kind!r}: not one of "
                              f"{[k.value for k in ProfileKind]}") from None
    if kind is not ProfileKind.LOCALHOST:
        return kind.value, ""
    path = chosen.localhost_path
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"seccomp Localhost profile {path!r}: must be an absolute path on the node")
    return kind.value, path


def _etc_mounts(paths: SandboxPaths, cri_targets: tuple[str, ...], readonly: bool) -> list[BindMount]:
    """The pod's /etc/hosts, /etc/resolv.conf and /etc/hostname, unless a CRI mount targets the same
    file (the kubelet mounts its own /etc/hosts for most pods). Read-only with a read-only rootfs."""
    files = (("/etc/hosts", paths.hosts), ("/etc/resolv.conf", paths.resolv_conf),
             ("/etc/hostname", paths.hostname))
    return [BindMount(source=source, target=target, readonly=readonly, is_file=True)
            for target, source in files if source and target not in cri_targets]


def _absolute(path: str, what: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"{what} {path!r}: must be an absolute path")
    return posixpath.normpath(path)


def _container_path(path: str, what: str) -> str:
    if ".." in path.split("/"):
        raise InvalidArgument(f"{what} {path!r}: '..' is not allowed")
    return _absolute(path, what)


def _cri_mount(m: Mount, container: str, recursive_readonly_supported: bool,
               image_mounts: ImageMountSources, userns: UserNamespace | None) -> BindMount:
    if not m.image:
        return validate_mount(m, container, recursive_readonly_supported, userns)
    target = _container_path(m.container_path, f"container {container!r}: mount container_path")
    # In a user namespace an image volume's layers are id-mapped as the rootfs' are, whether the
    # kubelet sent the pod's mappings on it or none.
    mount_idmapped(m.uid_mappings, m.gid_mappings, userns, f"container {container!r}: mount at {target}")
    return replace(image_mount(m, target, image_mounts), idmap=userns is not None)


def validate_mount(m: Mount, container: str, recursive_readonly_supported: bool,
                   userns: UserNamespace | None = None) -> BindMount:
    """A CRI mount of a host path as a bind; InvalidArgument for what the CRI forbids or pycrid
    cannot do. (An image mount is image_mount's.)"""
    target = _container_path(m.container_path, f"container {container!r}: mount container_path")
    where = f"container {container!r}: mount at {target}"
    if m.image:
        raise InvalidArgument(f"{where}: image volume {m.image!r} is not a bind of a host path")
    if m.image_sub_path:
        raise InvalidArgument(f"{where}: image_sub_path {m.image_sub_path!r} without an image")
    source = _absolute(m.host_path, f"{where}: host_path")
    if m.propagation not in PROPAGATIONS:
        raise InvalidArgument(f"{where}: propagation {m.propagation!r} not one of {PROPAGATIONS}")
    check_recursive_readonly(m, where, recursive_readonly_supported)
    return BindMount(source=source, target=target, readonly=m.readonly,
                     recursive_readonly=m.recursive_read_only, propagation=m.propagation,
                     idmap=mount_idmapped(m.uid_mappings, m.gid_mappings, userns, where))


def _device(d: DeviceMapping) -> Device:
    host = _absolute(d.host_path, "device host_path")
    container = _container_path(d.container_path or d.host_path, "device container_path")
    permissions = d.permissions or "rwm"
    if set(permissions) - set("rwm"):
        raise InvalidArgument(f"device {host}: permissions {d.permissions!r} not made of r, w, m")
    return Device(host_path=host, container_path=container, permissions=permissions)
