"""What a container's monitor and init must do, as plain data that crosses the fork-server socket.

Built by a pure function (runtime/container/spec.py) from the CRI config, the image config and the
sandbox; everything here is already decided: init only acts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runtime.container.model import IdMapping, UserNamespace
from runtime.linux.imagetree import ImageTree

HOST = "host"  # a namespace mode: stay in the agent's namespace
POD = "pod"  # the PID namespace of the pod's pause process, which the pod monitor holds
TARGET_PREFIX = "target:"  # + a container id: that container's PID namespace (CRI mode TARGET)


@dataclass(frozen=True)
class BindMount:
    source: str  # on the host
    target: str  # inside the container
    readonly: bool = False
    recursive_readonly: bool = False
    propagation: str = "rprivate"  # rprivate | rslave | rshared
    is_file: bool = False  # the target is created as a file, not a directory
    image: ImageTree | None = None  # an image volume: this image's filesystem, not ``source`` ("")
    idmap: bool = False  # id-mapped through the pod's user namespace (runtime/linux/idmap.py)


@dataclass(frozen=True)
class Device:
    host_path: str
    container_path: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class User:
    uid: int | None = None  # None: take it from `username` or the image, resolved inside the rootfs
    gid: int | None = None
    username: str = ""
    group: str = ""  # a group name (from the image's USER) resolved inside the rootfs; gid wins if set
    additional_gids: tuple[int, ...] = ()
    image_groups: bool = True  # add the user's /etc/group memberships (SupplementalGroupsPolicy Merge)


@dataclass(frozen=True)
class Namespaces:
    """Each is a path to join (a pod's pinned namespace), HOST, or "" for new; pid is "", HOST, POD
    or TARGET_PREFIX + container id, resolved by the pod monitor (never a pid that could be reused);
    user is the pod's pinned user namespace, or "" for the node's (a container never gets its own)."""

    net: str = ""
    ipc: str = ""
    uts: str = ""
    pid: str = ""
    user: str = ""


@dataclass(frozen=True)
class Restore:
    """A container started by restoring a CRIU checkpoint instead of exec'ing: runtime/checkpoint."""

    criu: str  # the criu binary
    images_dir: str  # the CRIU images, unpacked from the checkpoint archive
    mounts: tuple[tuple[str, str], ...] = ()  # (external mount key in the images, host path for it)
    stdio: tuple[str, ...] = ()  # the dumped init's fds 0-2 as CRIU names them ("" for none)


@dataclass(frozen=True)
class InitSpec:
    id: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    lowerdirs: tuple[str, ...]  # image snapshots, top layer first
    upperdir: str
    workdir: str
    rootfs: str  # where the overlay is mounted, in init's own mount namespace
    namespaces: Namespaces = Namespaces()
    user: User = User()
    readonly_rootfs: bool = False
    mounts: tuple[BindMount, ...] = ()
    devices: tuple[Device, ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    shm_path: str = ""  # the pod's /dev/shm to bind, or "" for a private tmpfs
    hostname: str = ""  # set only when init has its own UTS namespace
    capabilities: tuple[str, ...] = ()
    ambient_capabilities: tuple[str, ...] = ()  # also raised in the ambient set (kept across setuid)
    no_new_privs: bool = False
    privileged: bool = False
    seccomp: str = "Unconfined"  # RuntimeDefault | Unconfined | Localhost (runtime/linux/seccomp_profile)
    seccomp_profile: str = ""  # the Localhost profile's path on the host
    oom_score_adj: int | None = None
    cgroup: str = ""  # the container's cgroup path, joined before set-up
    cgroup_v1_dirs: dict[str, str] | None = None  # {hierarchy: host dir} to show at /sys/fs/cgroup
    # v2: a cgroup namespace of its own, rooted at its cgroup (what its cgroup2 mount shows).
    cgroup_namespace: bool = False
    log_path: str = ""
    exit_file: str = ""
    state_dir: str = ""  # per-container run dir: pid file, attach socket
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    userns: UserNamespace | None = None  # the pod's mappings when namespaces.user is set
    restore: Restore | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> InitSpec:
        data = dict(raw)
        data["namespaces"] = Namespaces(**data.get("namespaces", {}))
        data["user"] = User(**{**data.get("user", {}),
                               "additional_gids": tuple(data.get("user", {}).get("additional_gids", ()))})
        data["mounts"] = tuple(_bind_mount(m) for m in data.get("mounts", ()))
        data["devices"] = tuple(Device(**d) for d in data.get("devices", ()))
        userns = data.get("userns")
        data["userns"] = UserNamespace(IdMapping(**userns["uids"]), IdMapping(**userns["gids"])) if userns else None
        if data.get("restore") is not None:
            restore = data["restore"]
            data["restore"] = Restore(restore["criu"], restore["images_dir"],
                                      tuple((k, v) for k, v in restore.get("mounts", ())),
                                      tuple(restore.get("stdio", ())))
        for key in ("args", "env", "lowerdirs", "masked_paths", "readonly_paths", "capabilities",
                    "ambient_capabilities"):
            data[key] = tuple(data.get(key, ()))
        return InitSpec(**data)


def _bind_mount(raw: dict[str, Any]) -> BindMount:
    image = raw.get("image")
    tree = ImageTree(**{**image, "layers": tuple(image["layers"])}) if image else None
    return BindMount(**{**raw, "image": tree})
