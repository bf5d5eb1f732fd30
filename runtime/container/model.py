"""What the CRI asks of a container, as domain data (converted from protobuf in cri/), and the
record pycrid keeps of each container."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from runtime.cgroups.resources import Resources


class NamespaceMode(Enum):
    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3


class GroupsPolicy(Enum):
    """CRI SupplementalGroupsPolicy: whether the image's /etc/group adds groups to the CRI's."""

    MERGE = 0
    STRICT = 1


@dataclass(frozen=True)
class IdMapping:
    """One line of a uid_map or gid_map: container ids container_id..container_id+length-1 are
    host ids host_id..host_id+length-1."""

    container_id: int
    host_id: int
    length: int


@dataclass(frozen=True)
class UsernsOptions:
    """A CRI UserNamespace as sent; runtime/sandbox/userns.py decides what it may be."""

    mode: NamespaceMode = NamespaceMode.NODE
    uids: tuple[IdMapping, ...] = ()
    gids: tuple[IdMapping, ...] = ()


@dataclass(frozen=True)
class UserNamespace:
    """A pod's own user namespace: one uid and one gid mapping, each mapping container id 0."""

    uids: IdMapping
    gids: IdMapping


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    recursive_read_only: bool = False
    propagation: str = "rprivate"  # rprivate | rslave | rshared
    image: str = ""  # an image volume (CRI Mount.image): the image as the kubelet names it, host_path empty
    image_sub_path: str = ""  # the directory of that image to mount ("" for its root), as given
    uid_mappings: tuple[IdMapping, ...] = ()  # the kubelet's, for an id-mapped mount (the pod's own)
    gid_mappings: tuple[IdMapping, ...] = ()
    selinux_relabel: bool = False  # kept to be reported back; no SELinux here to relabel for


@dataclass(frozen=True)
class DeviceMapping:
    container_path: str
    host_path: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class Seccomp:
    kind: str = "Unconfined"  # RuntimeDefault | Unconfined | Localhost
    localhost_path: str = ""


@dataclass(frozen=True)
class SecurityContext:
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    capabilities_add_ambient: tuple[str, ...] = ()
    pid_mode: NamespaceMode = NamespaceMode.CONTAINER
    ipc_mode: NamespaceMode = NamespaceMode.POD
    network_mode: NamespaceMode = NamespaceMode.POD
    target_id: str = ""  # the container whose PID namespace TARGET mode joins
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    groups_policy: GroupsPolicy = GroupsPolicy.MERGE
    no_new_privs: bool = False
    masked_paths: tuple[str, ...] | None = None  # None: the runtime's defaults
    readonly_paths: tuple[str, ...] | None = None
    seccomp: Seccomp = Seccomp()
    userns: UsernsOptions | None = None  # None: not given (the container is in its pod's)


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    attempt: int
    image: str  # as the kubelet asked (a ref or an image id)
    user_image: str = ""  # the image as the pod spec names it (CRI user_specified_image), when given
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""  # relative to the sandbox's log directory
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: Resources = Resources()
    security: SecurityContext = SecurityContext()
    stop_signal: str = ""  # the CRI's, overriding the image's
