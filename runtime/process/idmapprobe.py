"""Whether this node can give pods user namespaces: asked once, when the agent starts, by a
fork-server child (making a user namespace forks, which the multi-threaded agent must not), of
the filesystems pod files live on: the image snapshots and container data under the root dir,
and the pods' run dir. The answer is RuntimeHandlerFeatures.user_namespaces; without it, a pod
that asks for a user namespace is refused (FAILED_PRECONDITION) with the reason.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from runtime.errors import PycridError
from runtime.linux.idmap import IdmapSupport, probe
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import protocol
from runtime.process.client import ForkServer

PROBE_TIMEOUT = 10.0
log = logging.getLogger(__name__)


def run_probe(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target: raw {"paths": [...]}; reports {"ok": {"problem": "" or why not}}."""
    with socket.socket(fileno=fds[0]) as report:
        try:
            support = probe(list(raw["paths"]), LinuxSyscalls())
        except Exception as e:  # noqa: BLE001 - the agent reports it as the problem
            protocol.send(report, protocol.error_message(e))
            return 1
        protocol.send(report, {"ok": {"problem": support.problem}})
    return 0


def probe_idmap(forkserver: ForkServer, paths: Sequence[str]) -> IdmapSupport:
    try:
        _, answer = forkserver.spawn("idmap_probe", {"id": "idmap", "paths": list(paths)}, timeout=PROBE_TIMEOUT)
        support = IdmapSupport(str(answer.get("problem", "")))
    except PycridError as e:
        support = IdmapSupport(f"probing id-mapped mounts failed: {e}")
    if support.supported:
        log.info("user namespaces: supported (id-mapped mounts work on %s)", ", ".join(paths))
    else:
        log.warning("user namespaces: not supported: %s", support.problem)
    return support
