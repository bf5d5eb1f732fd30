"""A small rtnetlink client: the link, address and route requests of pycrid's bridge network.

pyroute2 did this before; importing it cost the agent ~9 MiB of memory and ~0.2 s of start-up for
the dozen requests below. Messages are packed with struct as linux/rtnetlink.h lays them out; a request waits for its
acknowledgement, and an error the kernel answers is raised as OSError with its errno, so callers
test ``e.errno`` (EEXIST, ENODEV) as they would for a syscall.

A socket belongs to the network namespace of the thread that made it: open one per call, on the
thread that is in the namespace to change (in_netns.py).
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
AF_BRIDGE = 7
# Message types.
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
# Flags.
_REQUEST, _ACK, _DUMP, _EXCL, _CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
_NESTED, _TYPE_MASK = 0x8000, 0x3FFF  # nla_type: the nesting and byte-order flags over the type
_GETS = frozenset({RTM_GETLINK, RTM_GETADDR})  # answered with data, not an acknowledgement
IFF_UP = 0x1
# Attributes.
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 4, 10, 12, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
_RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 3, 0, 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefix length, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_ATTR = struct.Struct("=HH")  # rtattr: length, type
_ERRNO = struct.Struct("=i")
_RECV = 1 << 16


def attr(kind: int, value: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    data = _ATTR.pack(_ATTR.size + len(value), kind) + value
    return data + b"\0" * (-len(data) % 4)


def nested(kind: int, *attrs: bytes, flagged: bool = False) -> bytes:
    """Attributes inside one. ``flagged`` sets NLA_F_NESTED, which some readers require (a bridge
    port's IFLA_PROTINFO) and others do not expect (iproute2 leaves it off link info)."""
    return attr(kind | (_NESTED if flagged else 0), b"".join(attrs))


def text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Attribute type (nesting flag cleared) -> payload; a repeated type keeps its last value."""
    found: dict[int, bytes] = {}
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & _TYPE_MASK] = data[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def ifinfo(index: int = 0, family: int = socket.AF_UNSPEC, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str  # IFLA_INFO_KIND: "bridge", "veth", ... or "" for a plain link
    mtu: int
    master: int  # 0: none


@dataclass(frozen=True)
class Address:
    address: str
    prefixlen: int


def _link(body: bytes) -> Link:
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(body)
    attrs = parse_attrs(body[_IFINFO.size:])
    info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
    return Link(index=index, name=attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace"),
                kind=info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode(errors="replace"),
                mtu=struct.unpack("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0,
                master=struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0)


class Netlink:
    """One NETLINK_ROUTE socket (``sock`` stands in for it in tests); use as a context manager, on
    one thread."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            sock.bind((0, 0))
        self._sock = sock
        self._seq = 0

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[bytes]:
        """Sends one request and returns the bodies of its answers (several for a dump; none for
        an acknowledged change); an error answer raises OSError with its errno."""
        self._seq += 1
        seq = self._seq
        dump = flags & _DUMP == _DUMP
        ack = 0 if kind in _GETS else _ACK
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, _REQUEST | flags | ack, seq, 0) + body)
        answers: list[bytes] = []
        while True:
            data = self._sock.recv(_RECV)
            for msg_type, msg_seq, payload in _messages(data):
                if msg_seq != seq:
                    continue  # an answer to an earlier request that gave up on its error
                if msg_type == _NLMSG_DONE:
                    return answers
                if msg_type == _NLMSG_ERROR:
                    (error,) = _ERRNO.unpack_from(payload)
                    if error:
                        raise OSError(-error, os.strerror(-error))
                    return answers
                answers.append(payload)
                if not dump:
                    return answers

    # --- links -----------------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        try:
            (body,) = self.request(RTM_GETLINK, ifinfo() + text(IFLA_IFNAME, name))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return _link(body)

    def links(self) -> list[Link]:
        return [_link(body) for body in self.request(RTM_GETLINK, ifinfo(), _DUMP)]

    def add_link(self, *attrs: bytes, up: bool = False) -> None:
        """RTM_NEWLINK that fails with EEXIST when the name is taken."""
        flags = IFF_UP if up else 0
        self.request(RTM_NEWLINK, ifinfo(flags=flags, change=flags) + b"".join(attrs), _CREATE | _EXCL)

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, ifinfo(index, flags=IFF_UP, change=IFF_UP))

    def delete_link(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfo(index))

    def set_hairpin(self, index: int) -> None:
        """The bridge port sends frames back out where they came from (a pod reaching itself
        through a host port)."""
        self.request(RTM_SETLINK, ifinfo(index, family=AF_BRIDGE)
                     + nested(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, b"\1"), flagged=True))

    # --- addresses and routes --------------------------------------------------------------------

    def addresses(self, index: int) -> list[Address]:
        found = []
        for body in self.request(RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0), _DUMP):
            family, prefixlen, _flags, _scope, owner = _IFADDR.unpack_from(body)
            attrs = parse_attrs(body[_IFADDR.size:])
            raw = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
            if owner == index and raw:
                found.append(Address(socket.inet_ntop(family, raw), prefixlen))
        return found

    def add_address(self, index: int, address: str, flags: int = 0) -> None:
        iface = ipaddress.ip_interface(address)
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        packed = iface.ip.packed
        body = _IFADDR.pack(family, iface.network.prefixlen, flags & 0xFF, _RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed) + u32(IFA_FLAGS, flags)
        self.request(RTM_NEWADDR, body, _CREATE | _EXCL)

    def add_default_route(self, gateway: str, index: int) -> None:
        ip = ipaddress.ip_address(gateway)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        body = _RTMSG.pack(family, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST, 0)
        body += attr(RTA_GATEWAY, ip.packed) + u32(RTA_OIF, index)
        self.request(RTM_NEWROUTE, body, _CREATE | _EXCL)


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, seq, data[offset + _HEADER.size:offset + length]
        offset += (length + 3) & ~3
