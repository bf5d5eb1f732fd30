"""What the CRI asks of a pod sandbox, as domain data (converted from protobuf in cri/), and the
record pycrid keeps of each sandbox."""
from __future__ import annotations

from dataclasses import dataclass, field

from runtime.cgroups.resources import Resources
from runtime.container.model import NamespaceMode, Seccomp, UserNamespace
from runtime.network.plugin import DNS, PortMapping


@dataclass(frozen=True)
class SandboxConfig:
    name: str
    uid: str
    namespace: str
    attempt: int = 0
    hostname: str = ""
    log_directory: str = ""
    dns: DNS = DNS()
    port_mappings: tuple[PortMapping, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    network_mode: NamespaceMode = NamespaceMode.POD
    pid_mode: NamespaceMode = NamespaceMode.CONTAINER
    ipc_mode: NamespaceMode = NamespaceMode.POD
    sysctls: dict[str, str] = field(default_factory=dict)
    privileged: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    seccomp: Seccomp = Seccomp()
    overhead: Resources = Resources()
    resources: Resources = Resources()
    runtime_handler: str = ""
    userns: UserNamespace | None = None  # None: the node's user namespace (mode NODE)


@dataclass(frozen=True)
class SandboxPaths:
    """Where a sandbox's shared files and pinned namespaces live (all under the run dir)."""

    dir: str
    netns: str  # "" when the pod uses the host's network
    ipcns: str  # "" when the pod uses the host's IPC
    utsns: str  # "" when the pod uses the host's network (it then has the host's hostname too)
    pidns: str  # "" unless the pod shares one PID namespace (pause process's /proc/<pid>/ns/pid)
    hosts: str
    resolv_conf: str
    hostname: str
    shm: str  # "" when the pod uses the host's IPC (then /dev/shm is the host's)
    userns: str = ""  # the pod's pinned user namespace; "" when it has none (the node's)
