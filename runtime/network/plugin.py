"""The NetworkPlugin seam: what the runtime asks of pod networking, whoever provides it."""
from __future__ import annotations

import ipaddress
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runtime.errors import InvalidArgument
from runtime.store.checkpoint import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkStatus:
    ready: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PortMapping:
    protocol: str  # "TCP" | "UDP" | "SCTP"
    container_port: int
    host_port: int  # 0: not published on the host
    host_ip: str = ""  # "" means every host address


@dataclass(frozen=True)
class DNS:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodNetwork:
    """One pod's network attachment request: everything a plugin (or CNI) needs to set up or tear down."""

    pod_id: str  # the sandbox id (CNI ContainerID)
    name: str
    namespace: str
    uid: str
    netns_path: str  # the pinned network namespace
    port_mappings: tuple[PortMapping, ...] = ()
    dns: DNS = DNS()
    cgroup_parent: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


class NetworkPlugin(Protocol):
    name: str

    def status(self) -> NetworkStatus: ...

    def update_pod_cidr(self, cidr: str) -> None: ...

    @property
    def pod_cidr(self) -> str: ...

    def setup(self, pod: PodNetwork) -> tuple[str, ...]:
        """Attaches the pod; returns its IPs, primary first (IPv4 before IPv6 in dual stack)."""
        ...

    def teardown(self, pod: PodNetwork) -> None:
        """Detaches the pod and frees what setup took; succeeds when there is nothing left to do."""
        ...


SAVED_POD_CIDR = "pod-cidr.json"  # in a plugin's persistent state dir


class PodCidrs:
    """The CIDRs a plugin takes pod addresses from; the kubelet may replace them at any time
    (UpdateRuntimeConfig), and "" from it means "no change".

    What the kubelet sent is kept in ``saved`` (under the persistent root) and wins over the
    configured default at the next start: the kubelet sends the node's range once, and a pycrid
    restarted without it would hand out addresses outside the node's range (on a multi-node
    cluster, the same addresses as another node).

    A configured default of "" means none: no range until the kubelet sends one (get() is empty)."""

    def __init__(self, cidr: str, saved: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._saved = saved
        initial = _read_saved(saved) or cidr
        self._cidrs = parse_pod_cidrs(initial) if initial else ()

    def get(self) -> tuple[str, ...]:
        with self._lock:
            return self._cidrs

    def update(self, cidr: str) -> None:
        if not cidr:
            return
        parsed = parse_pod_cidrs(cidr)
        with self._lock:
            if parsed == self._cidrs:
                return
            if self._saved is not None:
                self._saved.parent.mkdir(parents=True, exist_ok=True)
                write_json(self._saved, {"pod_cidr": ",".join(parsed)})
            log.info("pod CIDR %s from the kubelet (was %s)", ",".join(parsed), ",".join(self._cidrs) or "none")
            self._cidrs = parsed

    def __str__(self) -> str:
        return ",".join(self.get())


def _read_saved(saved: Path | None) -> str:
    """The kubelet's CIDR from an earlier run, or "" (none, or unreadable: the config's then)."""
    if saved is None:
        return ""
    try:
        value = json.loads(saved.read_text()).get("pod_cidr", "")
        parse_pod_cidrs(value)
    except (OSError, ValueError, AttributeError, InvalidArgument):
        return ""
    return str(value)


def parse_pod_cidrs(cidr: str) -> tuple[str, ...]:
    """The kubelet sends one CIDR or a comma-separated dual-stack pair; each must be a network."""
    parts = tuple(p.strip() for p in cidr.split(",") if p.strip())
    if not parts or len(parts) > 2:
        raise InvalidArgument(f"pod CIDR {cidr!r}: expected one CIDR or an IPv4,IPv6 pair")
    for p in parts:
        try:
            ipaddress.ip_network(p, strict=True)
        except ValueError as e:
            raise InvalidArgument(f"pod CIDR {cidr!r}: {e}") from e
    return parts
