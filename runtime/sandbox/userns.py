"""User namespaces for pods (Kubernetes ``hostUsers: false``): what a CRI UserNamespace may ask,
and the id arithmetic that follows from a pod's mappings. Pure.

Mode NODE is the node's own user namespace (no mappings). Mode POD is one user namespace per pod,
made from the kubelet's mappings and shared by the pause and every container: exactly one uid and
one gid mapping (as containerd, whose snapshots are remapped by one range), and each must map
container id 0, the root the pod's processes start as. Modes CONTAINER and TARGET are refused, as
containerd and CRI-O refuse them. A container given no user namespace options is in its pod's; one
that gives them must give its pod's own. A userns pod may not share the node's network, IPC or PID
namespace (the kubelet refuses those too) and may not be privileged.

A mount of a userns pod is id-mapped when the kubelet asks so (Mount.uid_mappings, always the pod's
own mappings): files the host owns as uid 0 then appear owned by the pod's root, and what the
pod's root writes there is owned by uid 0 on disk, whatever host range the pod got.
"""
from __future__ import annotations

from runtime.container.model import IdMapping, NamespaceMode, UserNamespace, UsernsOptions
from runtime.container.users import Identity
from runtime.errors import InvalidArgument

ID_LIMIT = 2**32  # ids are 32-bit; (2^32 - 1) itself is "no id" to the kernel
PAUSE_ID = 65535  # the pause image's user


def map_line(mapping: IdMapping) -> str:
    """The mapping as /proc/<pid>/uid_map (and gid_map) takes it."""
    return f"{mapping.container_id} {mapping.host_id} {mapping.length}\n"


def _check_mapping(m: IdMapping, what: str, who: str) -> IdMapping:
    shown = f"{what} mapping {m.container_id}:{m.host_id}:{m.length}"
    if m.length < 1:
        raise InvalidArgument(f"{who}: {shown}: the length must be at least 1")
    if max(m.container_id, m.host_id) + m.length >= ID_LIMIT or min(m.container_id, m.host_id) < 0:
        raise InvalidArgument(f"{who}: {shown}: runs past the largest id, {ID_LIMIT - 2}")
    if m.container_id != 0:  # ids are unsigned: 0 is in the range only if the range starts there
        raise InvalidArgument(f"{who}: {shown} does not map container id 0 (root)")
    return m


def _one(mappings: tuple[IdMapping, ...], what: str, who: str) -> IdMapping:
    if len(mappings) != 1:
        raise InvalidArgument(f"{who}: a user namespace needs exactly one {what} mapping, got {len(mappings)}")
    return _check_mapping(mappings[0], what, who)


def user_namespace(opts: UsernsOptions, who: str) -> UserNamespace | None:
    """The user namespace ``opts`` asks for (None: the node's), or InvalidArgument naming ``who``."""
    if opts.mode == NamespaceMode.NODE:
        if opts.uids or opts.gids:
            raise InvalidArgument(f"{who}: user namespace mode NODE takes no mappings "
                                  f"(got {len(opts.uids)} uid and {len(opts.gids)} gid mappings)")
        return None
    if opts.mode != NamespaceMode.POD:
        raise InvalidArgument(f"{who}: user namespace mode {opts.mode.name} is not supported (only POD or NODE)")
    return UserNamespace(uids=_one(opts.uids, "uid", who), gids=_one(opts.gids, "gid", who))


def pod_user_namespace(opts: UsernsOptions | None, *, network: NamespaceMode, pid: NamespaceMode,
                       ipc: NamespaceMode, privileged: bool, who: str) -> UserNamespace | None:
    """A sandbox's user namespace; None when it asks for none or for the node's."""
    userns = user_namespace(opts, who) if opts is not None else None
    if userns is None:
        return None
    for kind, mode in (("network", network), ("PID", pid), ("IPC", ipc)):
        if mode == NamespaceMode.NODE:
            raise InvalidArgument(f"{who}: a pod with a user namespace cannot use the node's {kind} namespace")
    if privileged:
        raise InvalidArgument(f"{who}: a privileged pod cannot have a user namespace")
    return userns


def _shown(userns: UserNamespace | None) -> str:
    if userns is None:
        return "the node's user namespace"
    u, g = userns.uids, userns.gids
    return f"uids {u.container_id}:{u.host_id}:{u.length} gids {g.container_id}:{g.host_id}:{g.length}"


def container_user_namespace(opts: UsernsOptions | None, pod: UserNamespace | None,
                             who: str) -> UserNamespace | None:
    """A container's user namespace: always its pod's. Options, when given, must say so."""
    if opts is None:
        return pod
    asked = user_namespace(opts, who)
    if asked != pod:
        raise InvalidArgument(f"{who}: its user namespace ({_shown(asked)}) differs from its pod's ({_shown(pod)})")
    return pod


def check_container(userns: UserNamespace | None, privileged: bool, host_pid: bool, who: str) -> None:
    """What a container of a userns pod may not be."""
    if userns is None:
        return
    if privileged:
        raise InvalidArgument(f"{who}: a privileged container cannot run in a user namespace")
    if host_pid:
        raise InvalidArgument(f"{who}: a container in a user namespace cannot use the node's PID namespace")


def mount_idmapped(uids: tuple[IdMapping, ...], gids: tuple[IdMapping, ...], pod: UserNamespace | None,
                   where: str) -> bool:
    """Whether a CRI mount is id-mapped: when it carries mappings, which must be its pod's own."""
    if not uids and not gids:
        return False
    if pod is None:
        raise InvalidArgument(f"{where}: an id-mapped mount needs a pod with a user namespace")
    if uids != (pod.uids,) or gids != (pod.gids,):
        raise InvalidArgument(f"{where}: id mappings differ from the pod's user namespace ({_shown(pod)}); "
                              "pycrid maps mounts with the pod's own")
    return True


def to_host(mapping: IdMapping, container_id: int) -> int:
    """The host id of a container id (InvalidArgument when the mapping does not cover it)."""
    offset = container_id - mapping.container_id
    if not 0 <= offset < mapping.length:
        raise InvalidArgument(f"id {container_id} is not mapped by {map_line(mapping).strip()}")
    return mapping.host_id + offset


def to_container(mapping: IdMapping, host_id: int) -> int:
    """The container id of a host id (InvalidArgument when the mapping does not cover it)."""
    offset = host_id - mapping.host_id
    if not 0 <= offset < mapping.length:
        raise InvalidArgument(f"host id {host_id} is not mapped by {map_line(mapping).strip()}")
    return mapping.container_id + offset


def root_owner(userns: UserNamespace) -> tuple[int, int]:
    """The host (uid, gid) of the pod's root: what owns its rootfs' upper directory."""
    return to_host(userns.uids, 0), to_host(userns.gids, 0)


def container_identity(userns: UserNamespace, host: Identity) -> Identity:
    """An identity read from the host's /proc (host ids) as the pod sees it."""
    return Identity(to_container(userns.uids, host.uid), to_container(userns.gids, host.gid),
                    tuple(to_container(userns.gids, g) for g in host.additional_gids), host.home)


def pause_id(userns: UserNamespace | None) -> int:
    """The uid and gid the pause runs as: the pause image's 65535, or in a user namespace that maps
    fewer ids, the highest it maps (never root, unless root is all it maps)."""
    if userns is None:
        return PAUSE_ID
    return min(PAUSE_ID, userns.uids.length - 1, userns.gids.length - 1)
