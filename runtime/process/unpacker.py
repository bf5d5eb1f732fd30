"""Unpacking image layers in fork-server children, one process per layer.

A pull unpacks several layers at once; in the agent's threads they would share one interpreter
lock, and the tar parsing in Python would keep one CPU busy while the other waits. A forked child
per layer unpacks on its own CPU. A tiny layer (a config file, a marker) is unpacked in the agent:
the hand-off to a child costs more than its unpacking. The code and its checks are the same
(apply_layer).
"""
from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from runtime.errors import PycridError
from runtime.image.fileops import HostFileOps
from runtime.image.unpack import InProcessUnpacker, Progress, apply_layer
from runtime.process import protocol

if TYPE_CHECKING:  # the fork server imports this module for its children: not the agent's client
    from runtime.process.client import ForkServer

LAYER_TIMEOUT = 1800.0  # seconds for one layer: generous, a stuck child must not hang a pull forever
# Compressed layers up to this size unpack in the agent's thread in a few ms at most; the fork
# server's round trip and a child's start cost several.
IN_AGENT_BYTES = 128 << 10


def unpack_layer(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target: unpacks one layer and reports {"ok": {}} or the error and its class."""
    with socket.socket(fileno=fds[0]) as report:
        try:
            with open(raw["blob"], "rb") as blob:
                apply_layer(blob, raw["media_type"], raw["dest"], layer=raw["layer"], diff_id=raw["diff_id"],
                            fileops=HostFileOps(), progress=lambda n: None)
        except PycridError as e:
            protocol.send(report, {"error": str(e), "error_class": type(e).__name__})
            return 1
        except Exception as e:  # noqa: BLE001 - the agent gets it as an Internal error
            protocol.send(report, {"error": f"{type(e).__name__}: {e}"})
            return 1
        protocol.send(report, {"ok": {}})
    return 0


def in_agent(blob_bytes: int) -> bool:
    return blob_bytes <= IN_AGENT_BYTES


class ForkedUnpacker:
    """An image Unpacker that runs each layer but a tiny one in a fork-server child."""

    def __init__(self, forkserver: ForkServer) -> None:
        self._forkserver = forkserver
        self._here = InProcessUnpacker(HostFileOps())

    def __call__(self, blob: str, media_type: str, dest: str, *, layer: str, diff_id: str,
                 progress: Progress) -> None:
        if in_agent(os.stat(blob).st_size):
            self._here(blob, media_type, dest, layer=layer, diff_id=diff_id, progress=progress)
            return
        self._forkserver.spawn("unpack_layer", {"id": layer, "blob": blob, "media_type": media_type,
                                                "dest": dest, "layer": layer, "diff_id": diff_id},
                               timeout=LAYER_TIMEOUT)
