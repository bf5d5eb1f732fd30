"""Seccomp for one container: choose and compile its profile (pure), then load it with libseccomp.

Profiles are data (``runtime.linux.seccomp_profile``); compiling applies what depends on the
container and the machine (capability-gated groups, architecture, kernel version) and yields a flat
``Filter``. ``preload`` and ``load`` are the only parts that touch libseccomp (through ctypes).
"""

import ctypes
import errno
import os
import platform

from runtime.errors import Internal, InvalidArgument
from runtime.linux.seccomp_default import RUNTIME_DEFAULT
from runtime.linux.seccomp_profile import (
    OPERATORS,
    Profile,
    ProfileKind,
    Rule,
    SyscallGroup,
    kernel_version,
    read_profile,
)
from runtime.linux.seccomp_profile import Filter as Filter  # re-exported: profile_for's result, load's input

# platform.machine() -> (the profile's name for it, the Go name that "includes.arches" uses).
_NATIVE = {"x86_64": ("SCMP_ARCH_X86_64", "amd64"), "aarch64": ("SCMP_ARCH_AARCH64", "arm64")}
_SCMP_FLTATR_CTL_NNP = 3
_NR_SCMP_ERROR = -1


def _libseccomp_arch(name: str) -> str:
    return name.removeprefix("SCMP_ARCH_").lower()


def _applies(group: SyscallGroup, caps: frozenset[str], go_arch: str, kernel: tuple[int, int]) -> bool:
    inc, exc = group.includes, group.excludes
    if not inc.caps <= caps or (inc.arches and go_arch not in inc.arches):
        return False
    if inc.min_kernel is not None and kernel < inc.min_kernel:
        return False
    if exc.caps & caps or go_arch in exc.arches:
        return False
    return exc.min_kernel is None or kernel < exc.min_kernel


def _rules(group: SyscallGroup) -> list[Rule]:
    indexes = [a.index for a in group.args]
    if len(set(indexes)) == len(indexes):
        return [Rule(name, group.action, group.args) for name in group.names]
    # libseccomp takes one comparison per argument in a rule, so (like runc) split into
    # one rule per comparison: any of them matching applies the action.
    return [Rule(name, group.action, (arg,)) for name in group.names for arg in group.args]


def compile_profile(
    profile: Profile, caps: frozenset[str], machine: str | None = None, kernel_release: str | None = None
) -> Filter:
    """The rules of ``profile`` that apply to a container with ``caps`` on this machine.

    A group applies if the container has all of includes.caps, none of excludes.caps, and the
    architecture and kernel match (Docker's semantics). Rules whose action is the default one are
    dropped, as runc does: they change nothing and libseccomp refuses them."""
    machine = machine or platform.machine()
    if machine not in _NATIVE:
        raise InvalidArgument(f"seccomp: unsupported architecture {machine!r}")
    native, go_arch = _NATIVE[machine]
    kernel = kernel_version(kernel_release or platform.release())
    if profile.architectures:
        arches = profile.architectures
    else:
        arches = (native, *dict(profile.arch_map).get(native, ()))
    rules = [
        rule
        for group in profile.syscalls
        if _applies(group, caps, go_arch, kernel)
        for rule in _rules(group)
        if rule.action != profile.default_action
    ]
    return Filter(profile.default_action, tuple(_libseccomp_arch(a) for a in arches), tuple(rules))


def profile_for(
    kind: ProfileKind,
    localhost_path: str | None,
    caps: frozenset[str],
    machine: str | None = None,
    kernel_release: str | None = None,
) -> Filter | None:
    """The filter for a container with capabilities ``caps``; None for Unconfined (no filter)."""
    if kind is ProfileKind.UNCONFINED:
        return None
    if kind is ProfileKind.RUNTIME_DEFAULT:
        profile = RUNTIME_DEFAULT
    elif not localhost_path:
        raise InvalidArgument("seccomp: a Localhost profile needs a path")
    else:
        profile = read_profile(localhost_path)
    return compile_profile(profile, caps, machine, kernel_release)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_loaded: ctypes.CDLL | None = None


def preload() -> None:
    """Load the host's libseccomp now, before entering a container's root: loading it afterwards
    would run the container's own libseccomp.so, as root, in our process. Idempotent."""
    global _loaded
    if _loaded is not None:
        return
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError as e:
        raise Internal(f"loading libseccomp.so.2: {e}") from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]  # fmt: skip
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    _loaded = lib


def _check(rc: int, what: str) -> None:
    if rc < 0:  # libseccomp returns -errno
        raise Internal(f"seccomp: {what}: {os.strerror(-rc)}")


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: Rule, number: int) -> None:
    args = (_ArgCmp * max(len(rule.args), 1))(
        *(_ArgCmp(a.index, OPERATORS[a.op], a.value, a.value_two) for a in rule.args)
    )
    rc = lib.seccomp_rule_add_array(ctx, rule.action.value(), number, len(rule.args), args)
    _check(rc, f"adding a rule for {rule.syscall} ({rule.action.name}, {len(rule.args)} conditions)")


def load(seccomp_filter: Filter) -> None:
    """Install ``seccomp_filter`` on this process: call it last before exec.

    libseccomp is told not to set no_new_privs itself: that is the caller's decision (the CRI's
    allowPrivilegeEscalation). Without no_new_privs the kernel requires CAP_SYS_ADMIN to load a
    filter, so a caller that keeps privilege escalation must load before dropping capabilities.
    Syscall names this libseccomp does not know are skipped, as runc does. Needs ``preload()``."""
    lib = _loaded
    if lib is None:
        raise Internal("seccomp: load() before preload(): libseccomp must come from the host")
    ctx = lib.seccomp_init(seccomp_filter.default_action.value())
    if not ctx:
        raise Internal(f"seccomp: seccomp_init({seccomp_filter.default_action}) failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0), "clearing SCMP_FLTATR_CTL_NNP")
        for arch in seccomp_filter.architectures:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise InvalidArgument(f"seccomp: unknown architecture {arch!r}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno.EEXIST:  # the native architecture is in every new filter already
                _check(rc, f"adding architecture {arch}")
        for rule in seccomp_filter.rules:
            number = lib.seccomp_syscall_resolve_name(rule.syscall.encode())
            if number != _NR_SCMP_ERROR:
                _add_rule(lib, ctx, rule, number)
        _check(lib.seccomp_load(ctx), "loading the filter")
    finally:
        lib.seccomp_release(ctx)
