"""The rtnetlink client's wire format (as linux/rtnetlink.h lays it out) and its answers: data,
acknowledgements, dumps and errors, against a socket that plays the kernel's part."""
from __future__ import annotations

import errno
import socket
import struct

import pytest

from runtime.network import rtnetlink as rt

HEADER = struct.Struct("=IHHII")


def message(kind: int, seq: int, body: bytes) -> bytes:
    data = HEADER.pack(HEADER.size + len(body), kind, 0, seq, 0) + body
    return data + b"\0" * (-len(data) % 4)


def error(seq: int, code: int) -> bytes:
    return message(2, seq, struct.pack("=i", -code) + b"\0" * 16)


def link_body(index: int, name: str, kind: str = "", mtu: int = 1500, master: int = 0) -> bytes:
    attrs = rt.text(rt.IFLA_IFNAME, name) + rt.u32(rt.IFLA_MTU, mtu)
    if master:
        attrs += rt.u32(rt.IFLA_MASTER, master)
    if kind:
        attrs += rt.nested(rt.IFLA_LINKINFO, rt.text(rt.IFLA_INFO_KIND, kind), flagged=True)
    return rt.ifinfo(index) + attrs


class Kernel:
    """A socket whose answers to the n-th request are ``replies[n](seq)``."""

    def __init__(self, *replies) -> None:  # noqa: ANN002 - callables of the sequence number
        self.replies = list(replies)
        self.sent: list[bytes] = []
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        seq = HEADER.unpack_from(data)[3]
        self.pending = list(self.replies.pop(0)(seq))
        return len(data)

    def recv(self, n: int) -> bytes:
        return self.pending.pop(0)

    def close(self) -> None:
        pass


def netlink(*replies) -> tuple[rt.Netlink, Kernel]:  # noqa: ANN002
    kernel = Kernel(*replies)
    return rt.Netlink(sock=kernel), kernel  # type: ignore[arg-type]


def test_attributes_are_padded_and_parse_back() -> None:
    packed = rt.text(rt.IFLA_IFNAME, "eth0") + rt.u32(rt.IFLA_MTU, 9000) + rt.attr(99, b"\1")
    assert len(packed) % 4 == 0 and rt.text(rt.IFLA_IFNAME, "eth0")[:4] == struct.pack("=HH", 9, rt.IFLA_IFNAME)
    parsed = rt.parse_attrs(packed)
    assert parsed[rt.IFLA_IFNAME] == b"eth0\0" and struct.unpack("=I", parsed[rt.IFLA_MTU]) == (9000,)
    assert parsed[99] == b"\1"


def test_nesting_flag_only_where_asked() -> None:
    assert struct.unpack_from("=HH", rt.nested(rt.IFLA_PROTINFO, b"", flagged=True))[1] == rt.IFLA_PROTINFO | 0x8000
    assert struct.unpack_from("=HH", rt.nested(rt.IFLA_LINKINFO))[1] == rt.IFLA_LINKINFO
    assert rt.IFLA_PROTINFO in rt.parse_attrs(rt.nested(rt.IFLA_PROTINFO, b"", flagged=True))


def test_a_link_by_name_and_a_missing_one() -> None:
    nl, kernel = netlink(lambda seq: [message(rt.RTM_NEWLINK, seq, link_body(7, "pbr0", "bridge", 1450))],
                         lambda seq: [error(seq, errno.ENODEV)])
    assert nl.link("pbr0") == rt.Link(index=7, name="pbr0", kind="bridge", mtu=1450, master=0)
    assert nl.link("nope") is None
    length, kind, flags, _, _ = HEADER.unpack_from(kernel.sent[0])
    assert (length, kind, flags) == (len(kernel.sent[0]), rt.RTM_GETLINK, 0x1)  # a get asks no ack
    assert rt.parse_attrs(kernel.sent[0][HEADER.size + 16:])[rt.IFLA_IFNAME] == b"pbr0\0"


def test_a_dump_gathers_every_part_until_done_and_skips_stale_answers() -> None:
    nl, _ = netlink(lambda seq: [error(seq - 1, 0) + message(rt.RTM_NEWLINK, seq, link_body(1, "lo")),
                                 message(rt.RTM_NEWLINK, seq, link_body(8, "veth1", "veth", master=7))
                                 + message(3, seq, b"\0" * 4)])
    assert [(link.name, link.master) for link in nl.links()] == [("lo", 0), ("veth1", 7)]


def test_a_change_is_acknowledged_or_raises_the_kernels_errno() -> None:
    nl, kernel = netlink(lambda seq: [error(seq, 0)], lambda seq: [error(seq, errno.EEXIST)])
    nl.add_address(3, "fd00::1/64", 0x02)
    with pytest.raises(OSError) as raised:
        nl.add_link(rt.text(rt.IFLA_IFNAME, "pbr0"), up=True)
    assert raised.value.errno == errno.EEXIST
    _, kind, flags, _, _ = HEADER.unpack_from(kernel.sent[0])
    assert kind == rt.RTM_NEWADDR and flags == 0x1 | 0x4 | 0x400 | 0x200  # request, ack, create, excl
    family, prefixlen, ifa_flags, _, index = struct.unpack_from("=BBBBI", kernel.sent[0], HEADER.size)
    assert (family, prefixlen, ifa_flags, index) == (socket.AF_INET6, 64, 0x02, 3)
    attrs = rt.parse_attrs(kernel.sent[0][HEADER.size + 8:])
    assert attrs[rt.IFA_LOCAL] == attrs[rt.IFA_ADDRESS] == socket.inet_pton(socket.AF_INET6, "fd00::1")
    flags_up = struct.unpack_from("=BxHiII", kernel.sent[1], HEADER.size)
    assert flags_up[3:] == (rt.IFF_UP, rt.IFF_UP)


def test_addresses_of_one_link() -> None:
    def addr(index: int, family: int, ip: str, prefixlen: int) -> bytes:
        head = struct.pack("=BBBBI", family, prefixlen, 0, 0, index)
        return head + rt.attr(rt.IFA_ADDRESS, socket.inet_pton(family, ip))
    nl, _ = netlink(lambda seq: [message(rt.RTM_NEWADDR, seq, addr(7, socket.AF_INET, "10.88.0.1", 16))
                                 + message(rt.RTM_NEWADDR, seq, addr(2, socket.AF_INET, "192.0.2.5", 24))
                                 + message(rt.RTM_NEWADDR, seq, addr(7, socket.AF_INET6, "fd00::1", 64))
                                 + message(3, seq, b"\0" * 4)])
    assert nl.addresses(7) == [rt.Address("10.88.0.1", 16), rt.Address("fd00::1", 64)]


def test_hairpin_is_a_nested_bridge_port_mode_for_the_bridge_family() -> None:
    nl, kernel = netlink(lambda seq: [error(seq, 0)])
    nl.set_hairpin(9)
    _, kind, _, _, _ = HEADER.unpack_from(kernel.sent[0])
    family, _, index, _, _ = struct.unpack_from("=BxHiII", kernel.sent[0], HEADER.size)
    assert (kind, family, index) == (rt.RTM_SETLINK, rt.AF_BRIDGE, 9)
    kind_raw = struct.unpack_from("=HH", kernel.sent[0], HEADER.size + 16)[1]
    assert kind_raw == rt.IFLA_PROTINFO | 0x8000
    protinfo = rt.parse_attrs(kernel.sent[0][HEADER.size + 16:])[rt.IFLA_PROTINFO]
    assert rt.parse_attrs(protinfo) == {rt.IFLA_BRPORT_MODE: b"\1"}
