"""Which containers pycrid can checkpoint and restore with CRIU, and why not the others (pure).

CRIU dumps a container as the whole of its own PID namespace, with the pod's network namespace
external; its stdio must be the pod monitor's pipes, since a terminal the monitor holds the
master of cannot be carried over; and its mount paths must fit CRIU's option syntax.
"""
from __future__ import annotations

from runtime.checkpoint.metadata import usable_mount_key
from runtime.process.initspec import HOST, InitSpec


def refusal(spec: InitSpec) -> str | None:
    """Why the container of ``spec`` cannot be checkpointed or restored; None if it can."""
    if spec.tty:
        return ("it has a TTY: CRIU cannot carry over a terminal whose master the pod monitor holds; "
                "create it without tty to checkpoint it")
    if spec.namespaces.pid:
        how = "the host's" if spec.namespaces.pid == HOST else "a PID namespace shared with others"
        return (f"it runs in {how}: CRIU checkpoints a container only as the whole of its own PID "
                "namespace (namespace_options.pid = CONTAINER)")
    if spec.namespaces.net in (HOST, ""):
        return "it does not use its pod's network namespace (host network is not supported)"
    for kind in ("ipc", "uts"):
        if getattr(spec.namespaces, kind) == HOST:
            return f"it uses the host's {kind.upper()} namespace"
    bad = [m.target for m in spec.mounts if not usable_mount_key(m.target)]
    if bad:
        return f"CRIU's options cannot name its mounts at {', '.join(bad)} (spaces, ':' or brackets)"
    return None
