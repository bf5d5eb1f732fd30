"""What an Exec, Attach or PortForward RPC asked for, kept behind its URL's token until the client
connects (the RPC's checks are done by then: the URL only serves what was allowed)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool

    def streams(self) -> frozenset[str]:
        """The streams the client gets (a terminal has no stderr of its own)."""
        return frozenset(s for s, on in (("stdin", self.stdin), ("stdout", self.stdout),
                                         ("stderr", self.stderr and not self.tty)) if on)


@dataclass(frozen=True)
class ExecRequest(AttachRequest):
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortForwardRequest:
    sandbox_id: str
    ports: tuple[int, ...]  # may be empty: the client names them (SPDY headers, WebSocket query)


StreamRequest = ExecRequest | AttachRequest | PortForwardRequest
