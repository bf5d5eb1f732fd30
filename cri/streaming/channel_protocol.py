"""Kubernetes' channel protocols over WebSocket: which subprotocol a client gets, and how messages look.

Every message carries one channel: its first byte is the channel number (binary protocols), or
the ASCII character ``'0' + channel`` followed by the data in standard base64 (base64 protocols).
Remote command channels are stdin 0, stdout 1, stderr 2, error 3 and resize 4; with
``v5.channel.k8s.io`` the message ``[255, n]`` is the client's end of input on channel ``n``.
Port-forward puts the i-th port's data on channel 2*i and its errors on 2*i+1 (see
portforward_channels.py).
"""
from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runtime import errors

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5: [CLOSE_SIGNAL, channel] ends the client's input on that channel
# '0' + channel must stay one ASCII character, since a base64 message is a text frame (UTF-8).
MAX_BASE64_CHANNEL = 0x7F - ord("0")


class StreamKind(enum.Enum):
    REMOTECOMMAND = "remotecommand"  # exec and attach
    PORTFORWARD = "portforward"


@dataclass(frozen=True)
class ChannelProtocol:
    """A negotiated subprotocol. ``version`` is the remote command protocol whose semantics apply:
    below 4 the error channel carries plain text, from 4 on a JSON metav1.Status."""

    name: str  # "" when the client offered none: answered without a Sec-WebSocket-Protocol header
    version: int
    base64: bool

    @property
    def close_signal(self) -> bool:
        return self.version >= 5


class UnsupportedProtocol(errors.InvalidArgument):
    """None of the subprotocols the client offered is one this endpoint speaks."""


class MalformedMessage(errors.InvalidArgument):
    """A message that breaks the channel protocol; ``close_code`` is the WebSocket close code for it."""

    close_code = 1007  # invalid payload data


class MessageTooBig(MalformedMessage):
    close_code = 1009


_REMOTECOMMAND = (
    ChannelProtocol("v5.channel.k8s.io", 5, base64=False),
    ChannelProtocol("v4.channel.k8s.io", 4, base64=False),
    ChannelProtocol("v4.base64.channel.k8s.io", 4, base64=True),
    ChannelProtocol("v3.channel.k8s.io", 3, base64=False),
    ChannelProtocol("v2.channel.k8s.io", 2, base64=False),
    ChannelProtocol("channel.k8s.io", 1, base64=False),
    ChannelProtocol("base64.channel.k8s.io", 1, base64=True),
)
_PORTFORWARD = (
    ChannelProtocol("v4.channel.k8s.io", 4, base64=False),
    ChannelProtocol("v4.base64.channel.k8s.io", 4, base64=True),
)
# What a client that offers no subprotocol gets: the kubelet serves it binary framing, old semantics.
_UNNAMED = {
    StreamKind.REMOTECOMMAND: ChannelProtocol("", 1, base64=False),
    StreamKind.PORTFORWARD: ChannelProtocol("", 4, base64=False),
}


def supported(kind: StreamKind) -> tuple[ChannelProtocol, ...]:
    return _REMOTECOMMAND if kind is StreamKind.REMOTECOMMAND else _PORTFORWARD


def negotiate(offered: Sequence[str], kind: StreamKind) -> ChannelProtocol:
    """The first subprotocol in the client's own order that this endpoint speaks, as the kubelet's
    wsstream handshake picks it; a client that offers none gets the unnamed binary protocol."""
    if not offered:
        return _UNNAMED[kind]
    by_name = {p.name: p for p in supported(kind)}
    for name in offered:
        if name.strip() in by_name:
            return by_name[name.strip()]
    names = [p.name for p in supported(kind)]
    raise UnsupportedProtocol(f"requested protocol(s) are not supported: {list(offered)}; supports {names}")


def is_websocket_request(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Upgrade: websocket with an "upgrade" token in Connection (SPDY upgrades are told apart here)."""
    upgrade, connection_tokens = b"", set[bytes]()
    for name, value in headers:
        if name.lower() == b"upgrade":
            upgrade = value.strip().lower()
        elif name.lower() == b"connection":
            connection_tokens.update(token.strip().lower() for token in value.split(b","))
    return upgrade == b"websocket" and b"upgrade" in connection_tokens


def encode(protocol: ChannelProtocol, channel: int, data: bytes) -> bytes | str:
    """One message carrying ``data`` on ``channel``: bytes for a binary frame, str for a text frame."""
    if protocol.base64:
        if not 0 <= channel <= MAX_BASE64_CHANNEL:
            raise ValueError(f"channel {channel} has no single-character base64 name")
        return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
    if not 0 <= channel < CLOSE_SIGNAL:
        raise ValueError(f"channel {channel} out of range")
    return bytes((channel,)) + data


@dataclass(frozen=True)
class Data:
    channel: int
    data: bytes


@dataclass(frozen=True)
class EndOfInput:
    """v5: the client will send nothing more on this channel."""

    channel: int


def decode(protocol: ChannelProtocol, payload: bytes) -> Data | EndOfInput | None:
    """What one received message means; None for an empty message, which carries nothing.

    The frame type (text or binary) is not checked: the payload is read by the protocol, as the
    kubelet does. Raises MalformedMessage.
    """
    if not payload:
        return None
    if protocol.close_signal and payload[0] == CLOSE_SIGNAL:
        if len(payload) != 2:
            raise MalformedMessage(f"a close signal carries one channel byte, got {len(payload) - 1}")
        return EndOfInput(payload[1])
    if not protocol.base64:
        return Data(payload[0], payload[1:])
    channel = payload[0] - ord("0")
    if not 0 <= channel <= MAX_BASE64_CHANNEL:
        raise MalformedMessage(f"base64 message starts with {payload[:1]!r}, not a channel character")
    try:
        return Data(channel, base64.b64decode(payload[1:], validate=True))
    except binascii.Error as e:
        raise MalformedMessage(f"invalid base64 on channel {channel}: {e}") from e


class MessageAssembler:
    """Joins the parts of one received message (wsproto hands them over as they arrive) and decodes
    it once whole. A message may not grow past ``limit`` bytes: MessageTooBig."""

    def __init__(self, protocol: ChannelProtocol, limit: int) -> None:
        self._protocol, self._limit = protocol, limit
        self._parts = bytearray()

    def add(self, part: bytes | bytearray | str, finished: bool) -> Data | EndOfInput | None:
        data = part.encode() if isinstance(part, str) else part
        if len(self._parts) + len(data) > self._limit:
            self._parts.clear()
            raise MessageTooBig(f"a message exceeds {self._limit} bytes")
        self._parts += data
        if not finished:
            return None
        payload = bytes(self._parts)
        self._parts.clear()
        return decode(self._protocol, payload)
