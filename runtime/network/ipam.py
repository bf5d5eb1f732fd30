"""IP address management for the built-in bridge: one address per pod per pod CIDR, kept on disk.

Decisions are pure (`plan_allocation`, `pick_address`); `LeaseStore` only persists them. The store is
one JSON record written tmp → fsync → rename, so a crash leaves the previous or the next lease table,
never half of one. Each lease remembers the network it came from: after the pod CIDR changes, old
pods keep their addresses (and their NAT rule) until they go.

Allocation walks forward from the last address handed out in that network, like CNI host-local,
so an address just freed is not handed to the next pod at once (stale ARP/conntrack entries).
"""
from __future__ import annotations

import ipaddress
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.errors import Internal, ResourceExhausted
from runtime.store import checkpoint

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Lease:
    pod_id: str
    network: str  # the CIDR the address was taken from, e.g. "10.88.0.0/16"


@dataclass(frozen=True)
class LeaseTable:
    leases: Mapping[str, Lease] = field(default_factory=dict)  # address -> lease
    last: Mapping[str, str] = field(default_factory=dict)  # network -> last address handed out

    def of_pod(self, pod_id: str) -> dict[str, Lease]:
        return {ip: lease for ip, lease in self.leases.items() if lease.pod_id == pod_id}


def gateway_of(network: IPNetwork) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The bridge's address in a pod network: its first host."""
    return network.network_address + 1


def pick_address(network: IPNetwork, taken: Collection[str], after: str | None) -> str:
    """The first free address after `after` (wrapping), skipping the network, gateway and broadcast."""
    first = int(network.network_address) + 2
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    size = last - first + 1
    start = first
    if after is not None and first <= int(ipaddress.ip_address(after)) <= last:
        start = int(ipaddress.ip_address(after)) + 1
    # `taken` is small next to any real range, so this ends after at most len(taken) + 1 steps
    # unless the range is full.
    for step in range(max(size, 0)):
        candidate = str(ipaddress.ip_address(first + (start - first + step) % size))
        if candidate not in taken:
            return candidate
    raise ResourceExhausted(f"no free address left in pod network {network}")


def plan_allocation(table: LeaseTable, pod_id: str,
                    networks: Sequence[IPNetwork]) -> tuple[LeaseTable, tuple[IPInterface, ...]]:
    """The table after giving pod_id one address in each network (reusing any it holds), and those
    addresses with their network's prefix length, in the order of `networks`."""
    leases = dict(table.leases)
    last = dict(table.last)
    held = table.of_pod(pod_id)
    chosen = []
    for network in networks:
        mine = [ip for ip, lease in held.items() if lease.network == str(network)]
        if mine:
            address = mine[0]
        else:
            address = pick_address(network, leases.keys(), last.get(str(network)))
            leases[address] = Lease(pod_id, str(network))
            last[str(network)] = address
        chosen.append(ipaddress.ip_interface(f"{address}/{network.prefixlen}"))
    return LeaseTable(leases, last), tuple(chosen)


def without_pods(table: LeaseTable, pod_ids: Collection[str]) -> LeaseTable:
    return LeaseTable({ip: lease for ip, lease in table.leases.items() if lease.pod_id not in pod_ids},
                      table.last)


class LeaseStore:
    """The lease table of one bridge, in `<state_dir>/leases.json`; thread-safe within the agent."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / "leases.json"
        self._lock = threading.Lock()
        self._table: LeaseTable | None = None

    def allocate(self, pod_id: str, networks: Sequence[IPNetwork]) -> tuple[IPInterface, ...]:
        with self._lock:
            table, addresses = plan_allocation(self._load(), pod_id, networks)
            self._save(table)
            return addresses

    def release(self, pod_id: str) -> tuple[str, ...]:
        """Frees every address of pod_id; returns them (empty when it held none)."""
        with self._lock:
            table = self._load()
            freed = tuple(table.of_pod(pod_id))
            if freed:
                self._save(without_pods(table, {pod_id}))
            return freed

    def reconcile(self, live_pod_ids: Collection[str]) -> tuple[str, ...]:
        """Drops the leases of pods that no longer exist; returns those pods' ids."""
        with self._lock:
            table = self._load()
            gone = tuple(sorted({lease.pod_id for lease in table.leases.values()} - set(live_pod_ids)))
            if gone:
                self._save(without_pods(table, set(gone)))
            return gone

    def snapshot(self) -> LeaseTable:
        with self._lock:
            return self._load()

    def _load(self) -> LeaseTable:
        if self._table is None:
            exists = self._path.exists()
            self._table = _decode(checkpoint.load(self._path), self._path) if exists else LeaseTable()
        return self._table

    def _save(self, table: LeaseTable) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Atomic but not synced (two fsyncs less in every RunPodSandbox, under this table's lock,
        # which every pod's set-up takes): a lease outlives an agent crash in the page cache, and
        # after a machine crash no pod holding one is left (their namespaces went with it); CNI's
        # host-local IPAM does not sync its leases either.
        checkpoint.save(self._path, _encode(table), durable=False)
        self._table = table


def _encode(table: LeaseTable) -> dict[str, object]:
    return {"leases": {ip: {"pod": lease.pod_id, "network": lease.network}
                       for ip, lease in sorted(table.leases.items())},
            "last": dict(sorted(table.last.items()))}


def _decode(record: Mapping[str, Any], path: Path) -> LeaseTable:
    """``record``: what checkpoint.load read; a malformed one fails on its first wrong field."""
    try:
        leases = record["leases"]
        last = record["last"]
        return LeaseTable({str(ip): Lease(str(v["pod"]), str(v["network"])) for ip, v in leases.items()},
                          {str(k): str(v) for k, v in last.items()})
    except (KeyError, TypeError, AttributeError) as e:
        raise Internal(f"reading {path}: malformed lease table ({e!r})") from e
