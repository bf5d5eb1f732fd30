"""Runtime conditions reported by the Status RPC, decided from component checks."""
from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.network.plugin import NetworkStatus

RUNTIME_READY = "RuntimeReady"
NETWORK_READY = "NetworkReady"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""


def runtime_condition(dirs: tuple[str, ...], helpers_up: bool = True, helpers_message: str = "") -> Condition:
    """The runtime is ready when the directories it keeps state in are usable and its fork server
    (which new pods and pulls need) is up."""
    for d in dirs:
        if not os.access(d, os.W_OK | os.X_OK):
            return Condition(RUNTIME_READY, False, "StateDirUnusable", f"directory {d} is not writable")
    if not helpers_up:
        return Condition(RUNTIME_READY, False, "ForkServerDown", helpers_message)
    return Condition(RUNTIME_READY, True)


def network_condition(status: NetworkStatus) -> Condition:
    if status.ready:
        return Condition(NETWORK_READY, True)
    return Condition(NETWORK_READY, False, status.reason or "NetworkPluginNotReady",
                     status.message or "network plugin is not ready")
