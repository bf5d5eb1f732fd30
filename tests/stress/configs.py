"""Valid CRI configs for the harness's pods and containers: busybox, short and long commands, pods
with and without one shared PID namespace."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cri.api.v1 import api_pb2 as pb

IMAGE = "busybox:1"
NAMESPACE = "chaos"
LABELS = {"pycrid-chaos": "1"}
POD_NS, CONTAINER_NS = pb.POD, pb.CONTAINER

# Run until stopped: one handles TERM (after its current sleep), one ignores it as PID 1 of its
# own namespace (StopContainer must kill it), one writes its log all the time.
LASTING = (("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"),
           ("sleep", "3600"),
           ("sh", "-c", "while :; do echo tick; sleep 0.5; done"))
SHORT = (("true",), ("sh", "-c", "echo bye; exit 3"), ("sleep", "0.3"))
EXECS = (("echo", "hi"), ("sh", "-c", "id; hostname"), ("ls", "/"), ("sh", "-c", "exit 5"),
         ("sh", "-c", "echo err >&2; cat /proc/self/status | head -n 3"))


@dataclass(frozen=True)
class Context:
    """What configs are built against: where pod logs go, the test registry, and the node's
    current value of a non-namespaced sysctl (hostile configs ask for exactly that value, so a
    pycrid that wrongly applied one would leave the shared machine as it was)."""
    log_root: Path
    registry: str
    host_sysctl: tuple[str, str]

    @property
    def missing_image(self) -> str:
        return f"{self.registry}/chaos/nosuch:1"


def pod_config(ctx: Context, name: str, shared_pid: bool) -> pb.PodSandboxConfig:
    log_dir = ctx.log_root / name
    log_dir.mkdir(parents=True, exist_ok=True)
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace=NAMESPACE),
        hostname=name, log_directory=str(log_dir), labels=LABELS,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(pid=POD_NS if shared_pid else CONTAINER_NS))))


def container_config(name: str, command: tuple[str, ...], shared_pid: bool,
                     image: str = IMAGE) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
        command=list(command), log_path=f"{name}.log", labels=LABELS,
        linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(pid=POD_NS if shared_pid else CONTAINER_NS))))


def modest_resources() -> pb.LinuxContainerResources:
    return pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                      memory_limit_in_bytes=64 * 1024 * 1024)


def escape_marker(log_root: Path) -> str:
    """Hostile log paths point at files named so; finding one means pycrid wrote outside the pod
    log directory."""
    return f"{log_root.name}-escape"
