from __future__ import annotations

import pytest

from cri.streaming.portforward_channels import (
    MAX_PORTS,
    data_channel,
    error_channel,
    initial_messages,
    parse_ports,
    port_of,
    readable_channels,
)
from runtime import errors


@pytest.mark.parametrize(("query", "ports"), [
    ("ports=80", (80,)),
    ("ports=80,443&ports=8080", (80, 443, 8080)),
    ("port=5000&port=1", (5000, 1)),
    ("ports=80%2C81&other=x", (80, 81)),
    ("ports=080", (80,)),
    ("ports=65535", (65535,)),
])
def test_ports_are_read_in_order(query: str, ports: tuple[int, ...]) -> None:
    assert parse_ports(query) == ports


def test_a_query_naming_no_port_means_the_requested_ones() -> None:
    # The kubelet proxies a WebSocket port-forward to our URL without the client's query; the
    # ports it read from that query came in the PortForward RPC.
    assert parse_ports("", (8080, 53)) == (8080, 53)
    assert parse_ports("x=1", (8080,)) == (8080,)
    assert parse_ports("ports=80", (8080,)) == (80,)
    with pytest.raises(errors.InvalidArgument, match="cannot be empty"):
        parse_ports("ports=", (8080,))


@pytest.mark.parametrize(("query", "message"), [
    ("", "'ports' is required"),
    ("x=1", "'ports' is required"),
    ("ports=", "cannot be empty"),
    ("ports=80&ports=", "cannot be empty"),
    ("ports=0", "not a port"),
    ("ports=65536", "not a port"),
    ("ports=80,", "not a port"),
    ("ports=+80", "not a port"),
    ("ports=%2080", "not a port"),
    ("ports=-1", "not a port"),
    ("ports=8a", "not a port"),
    ("ports=%D9%A3", "not a port"),  # an Arabic-Indic digit three: int() would take it
    ("port=80&ports=80", "ambiguous"),
])
def test_bad_port_queries_are_refused(query: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        parse_ports(query)


def test_the_port_count_is_bounded() -> None:
    many = ",".join(str(p) for p in range(1000, 1000 + MAX_PORTS))
    assert len(parse_ports("ports=" + many)) == MAX_PORTS
    with pytest.raises(errors.InvalidArgument, match="at most"):
        parse_ports("ports=" + many + ",9")


def test_each_port_has_a_data_and_an_error_channel() -> None:
    assert [(data_channel(i), error_channel(i)) for i in range(3)] == [(0, 1), (2, 3), (4, 5)]
    assert [port_of(c) for c in range(4)] == [(0, False), (0, True), (1, False), (1, True)]
    assert readable_channels((80, 443)) == frozenset({0, 2})


def test_the_first_message_on_each_channel_is_its_port_little_endian() -> None:
    assert initial_messages((80, 8443)) == [(0, b"P\x00"), (1, b"P\x00"), (2, b"\xfb\x20"), (3, b"\xfb\x20")]
