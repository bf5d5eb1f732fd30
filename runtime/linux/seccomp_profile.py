"""Seccomp profiles as data: the model, and the parser of the OCI/Docker JSON profile format.

``runtime.linux.seccomp`` compiles a ``Profile`` for one container into a ``Filter`` and loads it.
"""

import enum
import errno
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidArgument

ACTIONS = {  # action name -> libseccomp value (errno/trace data is or'ed in, see Action.value)
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}


class ProfileKind(enum.Enum):
    RUNTIME_DEFAULT = "RuntimeDefault"
    UNCONFINED = "Unconfined"
    LOCALHOST = "Localhost"


@dataclass(frozen=True)
class Action:
    name: str  # a key of ACTIONS
    errno: int = 0  # the errno returned by SCMP_ACT_ERRNO, the data of SCMP_ACT_TRACE

    def value(self) -> int:
        return ACTIONS[self.name] | (self.errno & 0xFFFF)


ALLOW = Action("SCMP_ACT_ALLOW")


@dataclass(frozen=True)
class ArgRule:
    """A comparison on syscall argument ``index``. For MASKED_EQ, value is the mask and value_two
    the value the masked argument must equal (the OCI order, which libseccomp takes as-is)."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Condition:
    """includes/excludes of a syscall group. Empty fields do not constrain."""

    caps: frozenset[str] = frozenset()
    arches: frozenset[str] = frozenset()  # Go names: amd64, arm64, x32, ...
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class SyscallGroup:
    names: tuple[str, ...]
    action: Action
    args: tuple[ArgRule, ...] = ()
    includes: Condition = field(default_factory=Condition)
    excludes: Condition = field(default_factory=Condition)


@dataclass(frozen=True)
class Profile:
    default_action: Action
    syscalls: tuple[SyscallGroup, ...]
    architectures: tuple[str, ...] = ()  # OCI: every one is added
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()  # Docker: the native one and its subarches


@dataclass(frozen=True)
class Rule:
    syscall: str
    action: Action
    args: tuple[ArgRule, ...] = ()


@dataclass(frozen=True)
class Filter:
    """Ready for libseccomp: architectures by libseccomp name ("x86_64", "x32"), one rule per call."""

    default_action: Action
    architectures: tuple[str, ...]
    rules: tuple[Rule, ...]


def _action(name: object, errno_ret: object, where: str) -> Action:
    if name == "SCMP_ACT_NOTIFY":
        raise InvalidArgument(f"{where}: SCMP_ACT_NOTIFY is not supported (no seccomp agent)")
    if not isinstance(name, str) or name not in ACTIONS:
        raise InvalidArgument(f"{where}: unknown seccomp action {name!r}")
    if errno_ret is None:
        # runc's defaults: EPERM for ERRNO and TRACE when the profile names none.
        errno_ret = errno.EPERM if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else 0
    if not isinstance(errno_ret, int) or not 0 <= errno_ret <= 0xFFFF:
        raise InvalidArgument(f"{where}: bad errnoRet {errno_ret!r}")
    return Action(name, errno_ret)


def _arg(raw: Mapping[str, Any], where: str) -> ArgRule:
    index, op = raw.get("index"), raw.get("op")
    value, value_two = raw.get("value", 0), raw.get("valueTwo", 0)
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise InvalidArgument(f"{where}: argument index {index!r} is not 0..5")
    if op not in OPERATORS:
        raise InvalidArgument(f"{where}: unknown comparison {op!r}")
    if not all(isinstance(v, int) and 0 <= v < 1 << 64 for v in (value, value_two)):
        raise InvalidArgument(f"{where}: argument values must be unsigned 64-bit integers")
    return ArgRule(index, op, value, value_two)


def kernel_version(text: str) -> tuple[int, int]:
    """(major, minor) of a release string: "6.1.0-18-amd64" -> (6, 1)."""
    major, _, rest = text.partition(".")
    minor = "".join(c for c in rest.partition(".")[0] if c.isdigit())
    return int(major), int(minor or 0)


def _condition(raw: object, where: str) -> Condition:
    if raw is None:
        return Condition()
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{where}: includes/excludes must be an object")
    min_kernel = raw.get("minKernel")
    try:
        kernel = kernel_version(min_kernel) if min_kernel else None
    except ValueError:
        raise InvalidArgument(f"{where}: bad minKernel {min_kernel!r}") from None
    return Condition(frozenset(raw.get("caps") or ()), frozenset(raw.get("arches") or ()), kernel)


def _group(raw: Mapping[str, Any], where: str) -> SyscallGroup:
    names = raw.get("names") or ([raw["name"]] if raw.get("name") else [])
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgument(f"{where}: a syscall entry needs a list of names")
    return SyscallGroup(
        names=tuple(names),
        action=_action(raw.get("action"), raw.get("errnoRet"), where),
        args=tuple(_arg(a, where) for a in raw.get("args") or ()),
        includes=_condition(raw.get("includes"), where),
        excludes=_condition(raw.get("excludes"), where),
    )


def parse_profile(text: str, source: str) -> Profile:
    """A profile in the OCI/Docker JSON format; ``source`` names the file in errors."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise InvalidArgument(f"seccomp profile {source}: not a JSON object")
        if raw.get("architectures") and raw.get("archMap"):
            raise InvalidArgument(f"seccomp profile {source}: use either architectures or archMap")
        return Profile(
            default_action=_action(raw.get("defaultAction"), raw.get("defaultErrnoRet"), source),
            syscalls=tuple(
                _group(group, f"{source}: syscalls[{i}]") for i, group in enumerate(raw.get("syscalls") or ())
            ),
            architectures=tuple(raw.get("architectures") or ()),
            arch_map=tuple(
                (m["architecture"], tuple(m.get("subArchitectures") or ())) for m in raw.get("archMap") or ()
            ),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise InvalidArgument(f"seccomp profile {source}: {e}") from e


def read_profile(path: str) -> Profile:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"reading seccomp profile {path}: {e}") from e
    return parse_profile(text, path)
