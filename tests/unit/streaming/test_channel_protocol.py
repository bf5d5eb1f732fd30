from __future__ import annotations

import pytest

from cri.streaming.channel_protocol import (
    Data,
    EndOfInput,
    MalformedMessage,
    MessageAssembler,
    MessageTooBig,
    StreamKind,
    UnsupportedProtocol,
    decode,
    encode,
    is_websocket_request,
    negotiate,
)

RC, PF = StreamKind.REMOTECOMMAND, StreamKind.PORTFORWARD


@pytest.mark.parametrize(("name", "version", "base64"), [
    ("v5.channel.k8s.io", 5, False),
    ("v4.channel.k8s.io", 4, False),
    ("v4.base64.channel.k8s.io", 4, True),
    ("v3.channel.k8s.io", 3, False),
    ("v2.channel.k8s.io", 2, False),
    ("channel.k8s.io", 1, False),
    ("base64.channel.k8s.io", 1, True),
])
def test_each_remotecommand_protocol_is_spoken(name: str, version: int, base64: bool) -> None:
    protocol = negotiate([name], RC)
    assert (protocol.name, protocol.version, protocol.base64) == (name, version, base64)
    assert protocol.close_signal == (version == 5)


def test_the_clients_order_decides_as_in_the_kubelet() -> None:
    assert negotiate(["v4.channel.k8s.io", "v5.channel.k8s.io"], RC).name == "v4.channel.k8s.io"
    assert negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"], RC).name == "v5.channel.k8s.io"


def test_names_this_endpoint_does_not_speak_are_skipped() -> None:
    offered = ["base64url.bearer.authorization.k8s.io.dG9rZW4", "SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io"]
    assert negotiate(offered, RC).name == "v4.channel.k8s.io"


def test_no_offer_gets_the_unnamed_binary_protocol() -> None:
    for kind in StreamKind:
        protocol = negotiate([], kind)
        assert protocol.name == "" and not protocol.base64 and not protocol.close_signal


def test_an_offer_with_nothing_spoken_is_refused_with_the_list() -> None:
    with pytest.raises(UnsupportedProtocol, match=r"not supported: \['v9.channel.k8s.io'\]; supports .*v5"):
        negotiate(["v9.channel.k8s.io"], RC)


def test_portforward_speaks_only_v4() -> None:
    assert negotiate(["v4.base64.channel.k8s.io"], PF).base64
    for name in ("v5.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"):
        with pytest.raises(UnsupportedProtocol):
            negotiate([name], PF)


@pytest.mark.parametrize(("headers", "expected"), [
    ([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")], True),
    ([(b"upgrade", b"WebSocket"), (b"connection", b"keep-alive, upgrade")], True),
    ([(b"Upgrade", b"SPDY/3.1"), (b"Connection", b"Upgrade")], False),
    ([(b"Upgrade", b"websocket"), (b"Connection", b"keep-alive")], False),
    ([(b"Connection", b"Upgrade")], False),
])
def test_websocket_requests_are_told_from_others(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert is_websocket_request(headers) is expected


def test_binary_messages_put_the_channel_first() -> None:
    v4 = negotiate(["v4.channel.k8s.io"], RC)
    assert encode(v4, 1, b"out") == b"\x01out"
    assert encode(v4, 3, b"") == b"\x03"
    assert decode(v4, b"\x00foo\n") == Data(0, b"foo\n")
    assert decode(v4, b"\x04") == Data(4, b"")
    assert decode(v4, b"") is None


def test_base64_messages_as_in_the_kubernetes_docs() -> None:
    b64 = negotiate(["base64.channel.k8s.io"], RC)
    assert encode(b64, 1, b"\n") == "1Cg=="
    assert decode(b64, b"0Zm9vCgo=") == Data(0, b"foo\n\n")
    assert decode(b64, b"4") == Data(4, b"")
    with pytest.raises(MalformedMessage, match="invalid base64") as caught:
        decode(b64, b"0Zm9v!")
    assert caught.value.close_code == 1007
    with pytest.raises(MalformedMessage, match="channel character"):
        decode(b64, b"\x00Zm9v")


def test_v5_close_signal_ends_one_channel() -> None:
    v5, v4 = negotiate(["v5.channel.k8s.io"], RC), negotiate(["v4.channel.k8s.io"], RC)
    assert decode(v5, b"\xff\x00") == EndOfInput(0)
    assert decode(v4, b"\xff\x00") == Data(255, b"\x00")  # before v5, 255 is just a channel
    for bad in (b"\xff", b"\xff\x00\x01"):
        with pytest.raises(MalformedMessage, match="one channel byte"):
            decode(v5, bad)


def test_channels_without_a_name_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        encode(negotiate(["v4.channel.k8s.io"], RC), 255, b"")
    with pytest.raises(ValueError):
        encode(negotiate(["v4.base64.channel.k8s.io"], RC), 80, b"")
    assert encode(negotiate(["v4.base64.channel.k8s.io"], RC), 79, b"") == "\x7f"


def test_messages_are_decoded_once_whole() -> None:
    messages = MessageAssembler(negotiate(["v4.base64.channel.k8s.io"], RC), limit=100)
    assert messages.add("0Zm", finished=False) is None
    assert messages.add(b"9vCg==", finished=True) == Data(0, b"foo\n")  # a part may come as bytes or str
    assert messages.add("", finished=True) is None


def test_a_message_may_not_grow_past_the_limit() -> None:
    messages = MessageAssembler(negotiate(["v4.channel.k8s.io"], RC), limit=10)
    messages.add(b"\x00" + b"x" * 5, finished=False)
    with pytest.raises(MessageTooBig, match="exceeds 10 bytes") as caught:
        messages.add(b"x" * 5, finished=False)
    assert caught.value.close_code == 1009
    assert messages.add(b"\x00" + b"y" * 9, finished=True) == Data(0, b"y" * 9)  # the next starts afresh
