"""Which devices a container may use: the allow-list rules and their cgroup v1 form (pure).

A container's device access is denied by default and allowed by rule: the standard nodes every
container gets (/dev/null, the terminals, ...), mknod of any node (making one is harmless; opening
it is what the rules decide), and each device of its CRI config with the permissions given there.
A privileged container is not restricted at all. v1 writes the rules to devices.deny/allow; v2
has no such files, so devicefilter.py compiles them into an eBPF program for the cgroup.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.cgroups.resources import FileWrite
from runtime.errors import InvalidArgument

BLOCK, CHAR, ALL = "b", "c", "a"
ACCESS = "rwm"  # read, write, mknod: the order the kernel prints them in


@dataclass(frozen=True)
class DeviceRule:
    """Allow ``access`` on devices of ``kind`` (b, c, or a for both) with this major and minor
    number (None: any)."""

    kind: str
    major: int | None
    minor: int | None
    access: str = ACCESS

    def __post_init__(self) -> None:
        if self.kind not in (BLOCK, CHAR, ALL):
            raise InvalidArgument(f"device rule kind {self.kind!r}: not b, c or a")
        if not self.access or set(self.access) - set(ACCESS):
            raise InvalidArgument(f"device rule access {self.access!r}: not made of r, w, m")
        for n in (self.major, self.minor):
            if n is not None and not 0 <= n < 1 << 32:
                raise InvalidArgument(f"device rule number {n}: out of range")

    def v1_line(self) -> str:
        """"c 1:3 rwm", as devices.allow takes it."""
        def number(n: int | None) -> str:
            return "*" if n is None else str(n)
        return f"{self.kind} {number(self.major)}:{number(self.minor)} {self.access}"


# As runc and containerd allow every container (runc's AllowedDevices).
DEFAULT_RULES = (
    DeviceRule(CHAR, None, None, "m"),
    DeviceRule(BLOCK, None, None, "m"),
    DeviceRule(CHAR, 1, 3),     # /dev/null
    DeviceRule(CHAR, 1, 8),     # /dev/random
    DeviceRule(CHAR, 1, 7),     # /dev/full
    DeviceRule(CHAR, 5, 0),     # /dev/tty
    DeviceRule(CHAR, 1, 5),     # /dev/zero
    DeviceRule(CHAR, 1, 9),     # /dev/urandom
    DeviceRule(CHAR, 5, 1),     # /dev/console
    DeviceRule(CHAR, 136, None),  # /dev/pts/*
    DeviceRule(CHAR, 5, 2),     # /dev/ptmx
    DeviceRule(CHAR, 10, 200),  # /dev/net/tun
)


def rule_of_node(mode: int, rdev: int, access: str) -> DeviceRule:
    """The rule for one device node, from its stat (pure)."""
    if stat.S_ISCHR(mode):
        kind = CHAR
    elif stat.S_ISBLK(mode):
        kind = BLOCK
    else:
        raise InvalidArgument("not a device node")
    return DeviceRule(kind, os.major(rdev), os.minor(rdev), _ordered(access))


def _ordered(access: str) -> str:
    return "".join(a for a in ACCESS if a in access)


def container_rules(devices: Iterable[tuple[str, str]]) -> tuple[DeviceRule, ...]:
    """The default rules plus one per CRI device, given as (host path, permissions); the host
    path is read now (InvalidArgument if it is not a device node)."""
    rules = list(DEFAULT_RULES)
    for path, permissions in devices:
        try:
            st = os.stat(path)
        except OSError as e:
            raise InvalidArgument(f"device {path}: {e.strerror}") from e
        try:
            rules.append(rule_of_node(st.st_mode, st.st_rdev, permissions))
        except InvalidArgument as e:
            raise InvalidArgument(f"device {path}: {e}") from e
    return tuple(rules)


def v1_writes(rules: Iterable[DeviceRule]) -> list[FileWrite]:
    """Deny everything, then allow each rule (one write each: devices.allow takes one line)."""
    return [FileWrite("devices.deny", "a"), *(FileWrite("devices.allow", r.v1_line()) for r in rules)]
