"""Bridge and veth links through netlink (pyroute2), behind the `PodLinks` seam.

Every call opens its own `IPRoute()` on the calling thread and closes it: pyroute2 0.9 binds a
socket (and its event loop) to the thread that made it, and the gRPC server calls from many threads.
Work inside a pod's namespace runs through `run_in_netns` (no fork; see in_netns.py).

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
from typing import Any, Protocol

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from runtime.errors import FailedPrecondition, Internal, NotFound
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.network.in_netns import run_in_netns

_IFA_F_NODAD = 0x02  # IPv6 addresses usable at once: these links are private, duplicates impossible
_BRIDGE_MODE_HAIRPIN = 1


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
        with _netlink(f"bridge {name}") as ipr:
            index = _index(ipr, name)
            if index is None:
                try:
                    ipr.link("add", ifname=name, kind="bridge")
                except NetlinkError as e:
                    if e.code != errno.EEXIST:  # another thread made it first
                        raise
                index = _index(ipr, name)
            link = ipr.get_links(index)[0]
            kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
            if kind != "bridge":
                raise FailedPrecondition(f"link {name} exists and is a {kind or 'plain'} link, not a bridge")
            present = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
            for address in addresses:
                iface = ipaddress.ip_interface(address)
                if (str(iface.ip), iface.network.prefixlen) not in present:
                    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                             flags=_IFA_F_NODAD if iface.version == 6 else 0)
            ipr.link("set", index=index, state="up")
            return int(link.get("IFLA_MTU"))

    def attach(self, a: VethAttachment) -> None:
        try:
            netns_fd = os.open(a.netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise NotFound(f"network namespace {a.netns_path} does not exist") from e
        try:
            with _netlink(f"veth {a.host_ifname}") as ipr:
                bridge = _index(ipr, a.bridge)
                if bridge is None:
                    raise NotFound(f"bridge {a.bridge} does not exist")
                # One message makes the pair, enslaves the host end and brings it up.
                add = dict(ifname=a.host_ifname, kind="veth", mtu=a.mtu, master=bridge, state="up",
                           peer={"ifname": a.ifname, "net_ns_fd": netns_fd, "mtu": a.mtu})
                try:
                    ipr.link("add", **add)
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise
                    # A leftover of an earlier attempt for this pod (ids are never reused otherwise).
                    ipr.link("del", index=_must_index(ipr, a.host_ifname))
                    ipr.link("add", **add)
                ipr.brport("set", index=_must_index(ipr, a.host_ifname), mode=_BRIDGE_MODE_HAIRPIN)
        finally:
            os.close(netns_fd)
        run_in_netns(a.netns_path, lambda: _configure_pod_end(a), self._syscalls)

    def delete(self, ifname: str) -> bool:
        with _netlink(f"deleting {ifname}") as ipr:
            index = _index(ipr, ifname)
            if index is None:
                return False
            try:
                ipr.link("del", index=index)
            except NetlinkError as e:
                if e.code == errno.ENODEV:  # gone with its namespace meanwhile
                    return False
                raise
            return True

    def ports_of(self, bridge: str) -> tuple[str, ...]:
        with _netlink(f"listing ports of {bridge}") as ipr:
            index = _index(ipr, bridge)
            if index is None:
                return ()
            return tuple(link.get("IFLA_IFNAME") for link in ipr.get_links()
                         if link.get("IFLA_MASTER") == index)


def _configure_pod_end(a: VethAttachment) -> None:
    with _netlink(f"{a.ifname} in {a.netns_path}") as ipr:
        ipr.link("set", index=_must_index(ipr, "lo"), state="up")
        index = _must_index(ipr, a.ifname)
        for address in a.addresses:
            iface = ipaddress.ip_interface(address)
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                     flags=_IFA_F_NODAD if iface.version == 6 else 0)
        ipr.link("set", index=index, state="up")
        for gateway in a.gateways:
            default = "0.0.0.0/0" if ipaddress.ip_address(gateway).version == 4 else "::/0"
            ipr.route("add", dst=default, gateway=gateway, oif=index)


@contextmanager
def _netlink(what: str) -> Iterator[Any]:
    """An IPRoute for this thread; netlink and OS errors become Internal naming `what`."""
    try:
        with IPRoute(groups=0) as ipr:
            yield ipr
    except (NetlinkError, OSError) as e:
        raise Internal(f"{what}: {e}") from e


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _must_index(ipr: Any, ifname: str) -> int:
    index = _index(ipr, ifname)
    if index is None:
        raise NotFound(f"link {ifname} is missing")
    return index
