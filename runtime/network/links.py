"""Bridge and veth links through rtnetlink (rtnetlink.py), behind the `PodLinks` seam.

Every call opens its own netlink socket on the calling thread and closes it: a socket belongs to
the namespace its thread was in, and the gRPC server calls from many threads. Work inside a pod's
namespace runs through `run_in_netns` (no fork; see in_netns.py).

The pod's end of the veth is created directly inside the pod's namespace (by fd) under its final
name: one netlink request, so a crash can never leave a half-moved peer in the host namespace.
"""
from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import FailedPrecondition, Internal, NotFound
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.network import rtnetlink as rt
from runtime.network.in_netns import run_in_netns

_IFA_F_NODAD = 0x02  # IPv6 addresses usable at once: these links are private, duplicates impossible


@dataclass(frozen=True)
class VethAttachment:
    host_ifname: str
    bridge: str
    netns_path: str
    ifname: str  # the pod's interface, "eth0"
    addresses: tuple[str, ...]  # "10.88.0.5/16", one per family
    gateways: tuple[str, ...]  # the default route of each family
    mtu: int


class PodLinks(Protocol):
    def ensure_bridge(self, name: str, addresses: Sequence[str]) -> int:
        """Creates the bridge if missing, adds missing addresses, sets it up; returns its MTU."""
        ...

    def attach(self, a: VethAttachment) -> None:
        """Creates the veth pair with the host end on the bridge (hairpin on) and configures the pod end."""
        ...

    def delete(self, ifname: str) -> bool:
        """Deletes a host link (a veth takes its peer along); False when there was none."""
        ...

    def ports_of(self, bridge: str) -> tuple[str, ...]: ...


class NetlinkLinks:
    def __init__(self, syscalls: Syscalls | None = None) -> None:
        self._syscalls = syscalls or LinuxSyscalls()

    def ensure_bridge(self, name: str, addresses: Sequence[str]) -> int:
        with _netlink(f"bridge {name}") as nl:
            link = nl.link(name)
            if link is None:
                try:
                    nl.add_link(rt.text(rt.IFLA_IFNAME, name),
                                rt.nested(rt.IFLA_LINKINFO, rt.text(rt.IFLA_INFO_KIND, "bridge")))
                except OSError as e:
                    if e.errno != errno.EEXIST:  # another thread made it first
                        raise
                link = _must_link(nl, name)
            if link.kind != "bridge":
                raise FailedPrecondition(f"link {name} exists and is a {link.kind or 'plain'} link, not a bridge")
            present = {(ipaddress.ip_address(a.address), a.prefixlen) for a in nl.addresses(link.index)}
            for address in addresses:
                iface = ipaddress.ip_interface(address)
                if (iface.ip, iface.network.prefixlen) not in present:
                    nl.add_address(link.index, address, _IFA_F_NODAD if iface.version == 6 else 0)
            nl.set_up(link.index)
            return link.mtu

    def attach(self, a: VethAttachment) -> None:
        try:
            netns_fd = os.open(a.netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise NotFound(f"network namespace {a.netns_path} does not exist") from e
        try:
            with _netlink(f"veth {a.host_ifname}") as nl:
                bridge = nl.link(a.bridge)
                if bridge is None:
                    raise NotFound(f"bridge {a.bridge} does not exist")
                # One message makes the pair (the pod's end right in its namespace), enslaves the
                # host end and brings it up.
                peer = rt.ifinfo() + rt.text(rt.IFLA_IFNAME, a.ifname) + rt.u32(rt.IFLA_NET_NS_FD, netns_fd) \
                    + rt.u32(rt.IFLA_MTU, a.mtu)
                add = (rt.text(rt.IFLA_IFNAME, a.host_ifname), rt.u32(rt.IFLA_MTU, a.mtu),
                       rt.u32(rt.IFLA_MASTER, bridge.index),
                       rt.nested(rt.IFLA_LINKINFO, rt.text(rt.IFLA_INFO_KIND, "veth"),
                                 rt.nested(rt.IFLA_INFO_DATA, rt.attr(rt.VETH_INFO_PEER, peer))))
                try:
                    nl.add_link(*add, up=True)
                except OSError as e:
                    if e.errno != errno.EEXIST:
                        raise
                    # A leftover of an earlier attempt for this pod (ids are never reused otherwise).
                    nl.delete_link(_must_link(nl, a.host_ifname).index)
                    nl.add_link(*add, up=True)
                nl.set_hairpin(_must_link(nl, a.host_ifname).index)
        finally:
            os.close(netns_fd)
        run_in_netns(a.netns_path, lambda: _configure_pod_end(a), self._syscalls)

    def delete(self, ifname: str) -> bool:
        with _netlink(f"deleting {ifname}") as nl:
            link = nl.link(ifname)
            if link is None:
                return False
            try:
                nl.delete_link(link.index)
            except OSError as e:
                if e.errno == errno.ENODEV:  # gone with its namespace meanwhile
                    return False
                raise
            return True

    def ports_of(self, bridge: str) -> tuple[str, ...]:
        with _netlink(f"listing ports of {bridge}") as nl:
            link = nl.link(bridge)
            if link is None:
                return ()
            return tuple(port.name for port in nl.links() if port.master == link.index)


def _configure_pod_end(a: VethAttachment) -> None:
    with _netlink(f"{a.ifname} in {a.netns_path}") as nl:
        nl.set_up(_must_link(nl, "lo").index)
        index = _must_link(nl, a.ifname).index
        for address in a.addresses:
            nl.add_address(index, address, _IFA_F_NODAD if ipaddress.ip_interface(address).version == 6 else 0)
        nl.set_up(index)
        for gateway in a.gateways:
            nl.add_default_route(gateway, index)


@contextmanager
def _netlink(what: str) -> Iterator[rt.Netlink]:
    """A netlink socket for this thread; netlink and OS errors become Internal naming `what`."""
    try:
        with rt.Netlink() as nl:
            yield nl
    except OSError as e:
        raise Internal(f"{what}: {e}") from e


def _must_link(nl: rt.Netlink, ifname: str) -> rt.Link:
    link = nl.link(ifname)
    if link is None:
        raise NotFound(f"link {ifname} is missing")
    return link
