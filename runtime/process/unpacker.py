"""The fork-server target that unpacks one image layer in a child (the agent's side, and why, is
runtime/process/unpackclient.py)."""
from __future__ import annotations

import io
import socket
from typing import Any

from runtime.errors import PycridError
from runtime.image.fileops import HostFileOps
from runtime.image.growing import CutOff, GrowingFile
from runtime.image.unpack import apply_layer
from runtime.linux.poll import wait_readable
from runtime.process import protocol

_BUFFER = 1 << 20  # what a followed blob is read in: its pipe holds up to 1 MiB (image/pipefeed.py)


def unpack_layer(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target: unpacks one layer and reports {"ok": {}} or the error and its class.
    With "streamed" in the spec, the blob is still being downloaded into the fd after the report
    socket's (a pipe; runtime/image/growing.py): the agent says {"downloaded": true} on the report
    socket once it is whole; its shutting the socket instead means the download failed, or the
    agent went."""
    with socket.socket(fileno=fds[0]) as report:

        def ended(seconds: float) -> bool:
            if not wait_readable([report], seconds):
                return False
            message, _ = protocol.receive(report)
            if message is None or not message.get("downloaded"):
                raise CutOff(f"layer {raw['layer']}: its download ended without the blob")
            return True

        try:
            source = (io.BufferedReader(GrowingFile(fds[1], ended), _BUFFER)
                      if raw.get("streamed") else open(raw["blob"], "rb"))
            with source as blob:
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
