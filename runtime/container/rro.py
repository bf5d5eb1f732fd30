"""Recursive read-only mounts (CRI Mount.recursive_read_only): when a request may have one.

api.proto: "when set to true, readonly must be explicitly set to true, and propagation must be
PRIVATE". A read-only mount whose submounts can still receive mounts from the host (rslave) or
send them back (rshared) would not stay read-only all the way down, which is why the kubelet and
containerd refuse both. The kernel must also have mount_setattr (Linux 5.12+): without it there is
no way to make a whole tree read-only at once, and pycrid does not advertise the feature.
"""
from __future__ import annotations

from runtime.container.model import Mount
from runtime.errors import InvalidArgument


def check_recursive_readonly(m: Mount, where: str, supported: bool) -> None:
    """``where`` names the container and the mount for the error; ``supported``: the kernel has
    mount_setattr (probed once by the agent)."""
    if not m.recursive_read_only:
        return
    if not m.readonly:
        raise InvalidArgument(f"{where}: recursive_read_only needs readonly set too")
    if m.propagation != "rprivate":
        raise InvalidArgument(f"{where}: recursive_read_only needs private propagation, not {m.propagation}")
    if not supported:
        raise InvalidArgument(f"{where}: recursive read-only mounts need mount_setattr (Linux 5.12+), "
                              "which this kernel does not offer")
