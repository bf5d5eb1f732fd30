"""The built-in bridge network: works with no configuration on any Linux node.

Per node, made on first use (or by the first status()): a Linux bridge (`pycrid0`) holding the first
address of each pod CIDR; one nft table `inet <bridge>` (egress masquerade, hostPort hooks; nat.py);
and the sysctls a node needs: net.ipv4.ip_forward=1, net.ipv4.conf.<bridge>.route_localnet=1 (for
127.0.0.1:<hostPort>) and, with an IPv6 pod CIDR, net.ipv6.conf.all.forwarding=1. None of these are
undone by the plugin (`uninstall()` removes the bridge and the table).
Per pod: a veth pair (`veth<hash of pod id>` on the bridge, `eth0` in the pod), one address per pod
CIDR from the lease store, a default route via the bridge, and DNAT rules for its hostPorts.

Every per-pod artefact can be found from the pod id alone (the veth name is derived from it, leases
and nft rules are tagged with it), so teardown needs no memory of setup: it deletes whatever of the
three exists, which also mops up after a setup that crashed halfway.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from runtime import spans
from runtime.errors import FailedPrecondition, Internal, PycridError
from runtime.ids import check_id
from runtime.network import portmap
from runtime.network.ipam import IPNetwork, LeaseStore, gateway_of
from runtime.network.links import NetlinkLinks, PodLinks, VethAttachment
from runtime.network.nat import base_ruleset, delete_table_script
from runtime.network.nftables import Nft, NftCommand
from runtime.network.plugin import SAVED_POD_CIDR, NetworkStatus, PodCidrs, PodNetwork
from runtime.network.plugin_exec import SubprocessExec
from runtime.network.sysctl import ProcSysctls, Sysctls

log = logging.getLogger(__name__)
POD_IFNAME = "eth0"
NOT_READY = "NetworkPluginNotReady"


def host_ifname(pod_id: str) -> str:
    """15 characters at most (IFNAMSIZ), stable for the pod across agent restarts."""
    return "veth" + hashlib.sha256(pod_id.encode()).hexdigest()[:11]


class BridgeNetwork:
    name = "bridge"

    def __init__(self, pod_cidr: str, state_dir: Path, bridge_name: str = "pycrid0", *, mtu: int = 0,
                 links: PodLinks | None = None, nft: Nft | None = None,
                 sysctls: Sysctls | None = None) -> None:
        """mtu 0 means the bridge's own. The nft table is named after the bridge (`inet pycrid0`)."""
        self._cidrs = PodCidrs(pod_cidr, state_dir / SAVED_POD_CIDR)
        self._bridge = bridge_name
        self._mtu = mtu
        self._leases = LeaseStore(state_dir)
        self._links = links or NetlinkLinks()
        self._nft = nft or NftCommand(SubprocessExec())
        self._sysctls = sysctls or ProcSysctls()
        self._lock = threading.Lock()
        # The networks the host side was last set up for, and the bridge's MTU: setting up a pod
        # redoes the host side (a netlink dump and an nft transaction) only when they change.
        self._host: tuple[tuple[str, ...], int] | None = None

    @property
    def pod_cidr(self) -> str:
        return str(self._cidrs)

    def update_pod_cidr(self, cidr: str) -> None:
        self._cidrs.update(cidr)  # pods already running keep their addresses

    def status(self) -> NetworkStatus:
        if not self._cidrs.get():
            # `pod_cidr = ""`: the node's range comes from the kubelet. Until it has, a pod would get
            # an address from no range or the wrong one, and the kubelet must not report the node Ready.
            return NetworkStatus(False, NOT_READY, "bridge network: no pod CIDR yet (pod_cidr is \"\": "
                                                   "waiting for the kubelet's UpdateRuntimeConfig)")
        if self._host is not None:
            return NetworkStatus(ready=True)
        if not self._nft.available():
            return NetworkStatus(False, NOT_READY, "bridge network: the nft command is not installed")
        try:
            self._ensure_host()
        except PycridError as e:
            return NetworkStatus(False, NOT_READY, f"bridge network {self._bridge}: {e}")
        return NetworkStatus(ready=True)

    def setup(self, pod: PodNetwork) -> tuple[str, ...]:
        check_id(pod.pod_id, "pod sandbox")
        what = f"pod {pod.namespace}/{pod.name} ({pod.pod_id[:12]})"
        networks = [ipaddress.ip_network(c) for c in self._cidrs.get()]
        if not networks:
            raise FailedPrecondition(f"setting up the network of {what}: no pod CIDR yet (pod_cidr is \"\" "
                                     "and the kubelet has not sent one)")
        try:
            with spans.phase("network.host"):
                mtu = self._ensure_host()
            with spans.phase("network.lease"):
                addresses = self._leases.allocate(pod.pod_id, networks)
            ips = tuple(str(a.ip) for a in addresses)
            with spans.phase("network.links"):
                self._links.attach(VethAttachment(
                    host_ifname=host_ifname(pod.pod_id), bridge=self._bridge, netns_path=pod.netns_path,
                    ifname=POD_IFNAME,
                    addresses=tuple(str(a) for a in addresses),
                    gateways=tuple(str(gateway_of(a.network)) for a in addresses), mtu=self._mtu or mtu))
            if pod.port_mappings:  # a new pod has no rules to replace unless it asks for some
                self._replace_port_rules(pod, ips)
        except Exception as e:
            self._host = None  # the next pod redoes the host side, in case it was broken from outside
            self._undo(pod.pod_id, what)
            # Keep the class (it decides the gRPC code) but add which pod; foreign errors are Internal.
            cls = type(e) if type(e).__module__ == "runtime.errors" else Internal
            raise cls(f"setting up the network of {what}: {e}") from e
        return ips

    def teardown(self, pod: PodNetwork) -> None:
        check_id(pod.pod_id, "pod sandbox")
        failures = self._teardown_pod(pod.pod_id)
        if failures:
            raise Internal(f"tearing down the network of pod {pod.namespace}/{pod.name} ({pod.pod_id[:12]}): "
                           + "; ".join(failures))

    def reconcile(self, live_pod_ids: Collection[str]) -> tuple[str, ...]:
        """At recovery, before serving: frees the leases, veths and rules of pods that no longer exist
        (and bridge ports of no live pod); returns the ids of the pods cleaned up."""
        live = set(live_pod_ids)
        listing = self._nft.list_table(self._bridge) or {}
        leased = {lease.pod_id for lease in self._leases.snapshot().leases.values()}
        stale = (leased | portmap.tagged_pods(listing)) - live
        for pod_id in sorted(stale):
            for failure in self._teardown_pod(pod_id):
                log.warning("reconciling network of gone pod %s: %s", pod_id[:12], failure)
        ours = {host_ifname(p) for p in live}
        for port in self._links.ports_of(self._bridge):
            if port.startswith("veth") and port not in ours:
                self._links.delete(port)
        return tuple(sorted(stale))

    def uninstall(self) -> None:
        """Removes the node-level state (nft table, bridge); for `pycrid reset` and tests. Leases stay."""
        if self._nft.list_table(self._bridge) is not None:
            self._nft.apply(delete_table_script(self._bridge), f"deleting nft table inet {self._bridge}")
        self._links.delete(self._bridge)
        with self._lock:
            self._host = None

    def _ensure_host(self) -> int:
        """Bridge, addresses, sysctls and the base nft table, for every network a lease still uses."""
        with self._lock:
            networks = {ipaddress.ip_network(c) for c in self._cidrs.get()}
            leases = self._leases.snapshot().leases.values()
            networks |= {ipaddress.ip_network(lease.network) for lease in leases}
            ordered = sorted(networks, key=lambda n: (n.version, str(n)))
            key = tuple(str(n) for n in ordered)
            if self._host is not None and self._host[0] == key:
                return self._host[1]
            mtu = self._links.ensure_bridge(self._bridge, [f"{gateway_of(n)}/{n.prefixlen}" for n in ordered])
            self._ensure_sysctls(ordered)
            self._nft.apply(base_ruleset(self._bridge, self._bridge, list(key)), f"nft table inet {self._bridge}")
            self._host = (key, mtu)
            return mtu

    def _ensure_sysctls(self, networks: list[IPNetwork]) -> None:
        # A node routes for its pods. route_localnet lets DNATed 127.0.0.1:<hostPort> leave via the bridge.
        self._sysctls.ensure("net/ipv4/ip_forward", "1")
        self._sysctls.ensure(f"net/ipv4/conf/{self._bridge}/route_localnet", "1")
        if any(n.version == 6 for n in networks):
            self._sysctls.ensure("net/ipv6/conf/all/forwarding", "1")

    def _replace_port_rules(self, pod: PodNetwork, ips: tuple[str, ...]) -> None:
        listing = self._nft.list_table(self._bridge) or {}
        script = (portmap.delete_rules_script(self._bridge, portmap.tagged_rules(listing, pod.pod_id))
                  + portmap.port_rules(self._bridge, pod.pod_id, pod.port_mappings, ips))
        if script:
            self._nft.apply(script, f"hostPort rules of pod {pod.namespace}/{pod.name}")

    def _teardown_pod(self, pod_id: str) -> list[str]:
        """Removes rules, veth and leases, each attempted whatever the others did; returns what failed."""
        failures = []
        steps: list[tuple[str, Callable[[], object]]] = [
            ("hostPort rules", lambda: self._delete_port_rules(pod_id)),
            ("veth", lambda: self._links.delete(host_ifname(pod_id))),
            ("leases", lambda: self._leases.release(pod_id)),
        ]
        for what, step in steps:
            try:
                step()
            except PycridError as e:
                failures.append(f"{what}: {e}")
        return failures

    def _delete_port_rules(self, pod_id: str) -> None:
        listing = self._nft.list_table(self._bridge)
        rules = portmap.tagged_rules(listing, pod_id) if listing else ()
        if rules:
            self._nft.apply(portmap.delete_rules_script(self._bridge, rules),
                            f"deleting hostPort rules of {pod_id[:12]}")

    def _undo(self, pod_id: str, what: str) -> None:
        for failure in self._teardown_pod(pod_id):
            log.warning("rolling back the network of %s: %s", what, failure)
