"""Unpacking image layers in fork-server children, one process per layer: the agent's side.

A pull unpacks several layers at once; in the agent's threads they would share one interpreter
lock, and the tar parsing in Python would keep one CPU busy while the other waits. A forked child
per layer unpacks on its own CPU (runtime/process/unpacker.py). A tiny layer (a config file, a
marker) is unpacked in the agent: the hand-off to a child costs more than its unpacking. The code
and its checks are the same (apply_layer); the agent loads it (tarfile, the decompressors) with
the first tiny layer, not at start. A layer being downloaded is followed: its child reads the
download from a pipe as the agent writes it (runtime/image/growing.py), on a CPU the download
leaves idle.
"""
from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, NoReturn

from runtime.errors import Internal, PycridError
from runtime.process import protocol
from runtime.process.client import wait_report

if TYPE_CHECKING:
    from runtime.image.unpack import FollowedLayer, Progress, Unpacker
    from runtime.process.client import ForkServer

LAYER_TIMEOUT = 1800.0  # seconds for one layer: generous, a stuck child must not hang a pull forever
# Compressed layers up to this size unpack in the agent's thread in a few ms at most; the fork
# server's round trip and a child's start cost several.
IN_AGENT_BYTES = 128 << 10


def in_agent(blob_bytes: int) -> bool:
    return blob_bytes <= IN_AGENT_BYTES


class ForkedUnpacker:
    """An image Unpacker that runs each layer but a tiny one in a fork-server child."""

    def __init__(self, forkserver: ForkServer) -> None:
        self._forkserver = forkserver
        self._here: Unpacker | None = None

    def __call__(self, blob: str, media_type: str, dest: str, *, layer: str, diff_id: str,
                 progress: Progress) -> None:
        if in_agent(os.stat(blob).st_size):
            self._in_agent()(blob, media_type, dest, layer=layer, diff_id=diff_id, progress=progress)
            return
        self._forkserver.spawn("unpack_layer", {"id": layer, "blob": blob, "media_type": media_type,
                                                "dest": dest, "layer": layer, "diff_id": diff_id},
                               timeout=LAYER_TIMEOUT)

    def follows(self, blob_bytes: int) -> bool:
        # Every layer a child unpacks: streamed, it is not written to disk first (its download
        # waits for the image config to name the snapshot, one round trip, but a small one).
        return not in_agent(blob_bytes)

    def follow(self, source: int, media_type: str, dest: str, *, layer: str, diff_id: str) -> FollowedLayer:
        pid, report = self._forkserver.launch("unpack_layer", {
            "id": layer, "streamed": True, "media_type": media_type, "dest": dest,
            "layer": layer, "diff_id": diff_id}, fds=(source,))
        return _Followed(pid, report, f"unpack_layer {layer}")

    def _in_agent(self) -> Unpacker:
        if self._here is None:  # a race makes two, both alike
            from runtime.image.fileops import HostFileOps
            from runtime.image.unpack import InProcessUnpacker

            self._here = InProcessUnpacker(HostFileOps())
        return self._here


class _Followed:
    def __init__(self, pid: int, report: socket.socket, what: str) -> None:
        self._pid = pid
        self._report = report
        self._what = what

    def finish(self) -> None:
        try:
            protocol.send(self._report, {"downloaded": True})
        except OSError:
            pass  # the child is gone already: its exit, without a report, is the error
        self._wait()

    def stopped(self) -> NoReturn:
        self._wait()
        raise Internal(f"{self._what}: stopped reading its layer, with no error")

    def abort(self) -> None:
        # The child finds the stream cut off, reports and stops: then it writes no more.
        try:
            self._report.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            self._wait()
        except PycridError:
            pass

    def _wait(self) -> None:
        with self._report:
            wait_report(self._report, self._what, self._pid, LAYER_TIMEOUT)
