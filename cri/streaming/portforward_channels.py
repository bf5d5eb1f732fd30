"""Port-forward over WebSocket: which ports a request names, and which channels carry each of them.

The i-th requested port has a data channel 2*i (both ways) and an error channel 2*i+1 (server to
client). The first message the server sends on each of the two is the port, 2 bytes little-endian,
so that a client can tell which port a channel belongs to.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from urllib.parse import parse_qs

from cri.streaming.channel_protocol import MAX_BASE64_CHANNEL
from runtime import errors

# The kubelet reads "port"; the API server's PodPortForwardOptions and most clients say "ports".
PORT_PARAMETERS = ("port", "ports")
# Every channel, 2*i+1 included, must have a one-character name in the base64 protocol.
MAX_PORTS = (MAX_BASE64_CHANNEL + 1) // 2


def parse_ports(query: str, requested: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The ports of a request's query string, in order: repeated parameters and comma-separated
    lists both count, each port a decimal in 1..65535. A query naming none means ``requested``,
    the PortForward RPC's ports: the kubelet reads the client's query into the RPC and proxies the
    upgrade to our URL without it. Raises InvalidArgument."""
    values = parse_qs(query, keep_blank_values=True)
    named = [name for name in PORT_PARAMETERS if name in values]
    if len(named) > 1:
        raise errors.InvalidArgument(f"query parameters {named} are ambiguous together; use one of them")
    if not named and not requested:
        raise errors.InvalidArgument(f"query parameter {PORT_PARAMETERS[1]!r} is required")
    ports = [] if named else list(requested)
    for value in values[named[0]] if named else ():
        if not value:
            raise errors.InvalidArgument(f"query parameter {named[0]!r} cannot be empty")
        ports.extend(_port(item, value) for item in value.split(","))
    if len(ports) > MAX_PORTS:
        raise errors.InvalidArgument(f"{len(ports)} ports requested; at most {MAX_PORTS} per connection")
    return tuple(ports)


def _port(item: str, value: str) -> int:
    # isdecimal() alone would let int() take "٣" or " 3"; a port is ASCII digits only.
    if not (item.isascii() and item.isdigit()) or not 1 <= int(item) <= 0xFFFF:
        raise errors.InvalidArgument(f"unable to parse {value!r} as ports: {item!r} is not a port in 1-65535")
    return int(item)


def data_channel(index: int) -> int:
    return 2 * index


def error_channel(index: int) -> int:
    return 2 * index + 1


def port_of(channel: int) -> tuple[int, bool]:
    """The port index a channel belongs to, and whether it is that port's error channel."""
    index, error = divmod(channel, 2)
    return index, bool(error)


def readable_channels(ports: Sequence[int]) -> frozenset[int]:
    """The channels a client sends on: the data channels (the error channels are server to client)."""
    return frozenset(data_channel(i) for i in range(len(ports)))


def initial_messages(ports: Sequence[int]) -> list[tuple[int, bytes]]:
    """(channel, data) pairs the server sends first: each port's number on its data and error channel."""
    messages: list[tuple[int, bytes]] = []
    for index, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        messages += [(data_channel(index), prefix), (error_channel(index), prefix)]
    return messages
