"""Which layers the agent unpacks itself, which in a child from the stored blob, and which it follows
while they download."""
from __future__ import annotations

from typing import cast

from runtime.process.client import ForkServer
from runtime.process.unpackclient import FOLLOW_BYTES, IN_AGENT_BYTES, ForkedUnpacker, in_agent


def test_only_large_layers_are_followed_and_only_tiny_ones_stay_in_the_agent() -> None:
    unpacker = ForkedUnpacker(cast(ForkServer, object()))
    assert in_agent(IN_AGENT_BYTES) and not in_agent(IN_AGENT_BYTES + 1)
    assert not unpacker.follows(FOLLOW_BYTES - 1) and unpacker.follows(FOLLOW_BYTES)
    assert IN_AGENT_BYTES < FOLLOW_BYTES
