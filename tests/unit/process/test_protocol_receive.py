"""protocol.receive: a report the peer sent before it closed is read even when the peer closed
with a message of ours unread (the kernel then resets the connection once, ahead of the report)."""
from __future__ import annotations

import socket

from runtime.process import protocol


def test_a_report_sent_before_the_peer_closed_with_ours_unread_is_received() -> None:
    agent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with agent:
        protocol.send(child, {"error": "refused", "error_class": "InvalidArgument"})
        protocol.send(agent, {"downloaded": True})  # crosses the child's report
        child.close()  # unread: the agent's socket gets ECONNRESET
        assert protocol.receive(agent) == ({"error": "refused", "error_class": "InvalidArgument"}, [])
        assert protocol.receive(agent) == (None, [])


def test_a_peer_that_closed_without_a_report_reads_as_closed() -> None:
    agent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with agent:
        protocol.send(agent, {"downloaded": True})
        child.close()
        assert protocol.receive(agent) == (None, [])
