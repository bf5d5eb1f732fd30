"""Which layers the agent unpacks itself and which a child unpacks as they download (streamed)."""
from __future__ import annotations

from typing import cast

from runtime.process.client import ForkServer
from runtime.process.unpackclient import IN_AGENT_BYTES, ForkedUnpacker, in_agent


def test_every_layer_a_child_unpacks_is_followed_and_only_tiny_ones_stay_in_the_agent() -> None:
    unpacker = ForkedUnpacker(cast(ForkServer, object()))
    assert in_agent(IN_AGENT_BYTES) and not in_agent(IN_AGENT_BYTES + 1)
    assert not unpacker.follows(IN_AGENT_BYTES) and unpacker.follows(IN_AGENT_BYTES + 1)
