"""The fork-server target that unpacks one image layer in a child (the agent's side, and why, is
runtime/process/unpackclient.py)."""
from __future__ import annotations

import socket
from typing import Any

from runtime.errors import PycridError
from runtime.image.fileops import HostFileOps
from runtime.image.unpack import apply_layer
from runtime.process import protocol


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
