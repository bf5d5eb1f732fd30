"""What a container process runs and with which environment, from the CRI config and the image. Pure.

Both functions build new tuples from their inputs and never keep or mutate anything shared: two
containers of one image must not see each other's variables (CVE-2021-21334).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from runtime.errors import InvalidArgument

# The kernel's execve limits: one string of at most MAX_ARG_STRLEN bytes (32 pages, NUL included),
# and all of argv and envp within ARG_MAX (a quarter of the 8 MiB default stack). Larger would fail
# at exec, after the whole set-up; refused up front instead, naming the container.
MAX_STRING = 128 * 1024 - 1
MAX_TOTAL = 1024 * 1024


def merge_command(command: Sequence[str], args: Sequence[str], entrypoint: Sequence[str],
                  cmd: Sequence[str]) -> tuple[str, ...]:
    """argv by the kubelet's rules: `command` replaces the image's ENTRYPOINT *and* CMD; `args` alone
    replace CMD and keep ENTRYPOINT; neither runs ENTRYPOINT + CMD."""
    if command:
        argv = (*command, *args)
    elif args:
        argv = (*entrypoint, *args)
    else:
        argv = (*entrypoint, *cmd)
    if not argv or not argv[0]:
        raise InvalidArgument("no command specified: neither the container config nor the image has one")
    for arg in argv:
        if "\0" in arg:
            raise InvalidArgument(f"command argument {arg!r} contains a NUL byte")
    return tuple(argv)


def _split(entry: str) -> tuple[str, str]:
    name, _, value = entry.partition("=")
    return name, value


def _check(name: str, value: str, where: str) -> None:
    if not name or "=" in name or "\0" in name:
        raise InvalidArgument(f"{where} environment variable name {name!r} is not valid")
    if "\0" in value:
        raise InvalidArgument(f"{where} environment variable {name!r} has a NUL byte in its value")


def merge_env(image_env: Iterable[str], config_envs: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """``NAME=value`` entries: the image's in their order, each replaced by the config's value of the
    same name; the config's other names appended in their order (a repeated name: the last value, at
    the first position). Values may contain '='; an image entry without '=' is an empty value."""
    merged: dict[str, str] = {}
    for entry in image_env:
        name, value = _split(entry)
        _check(name, value, "image")
        merged[name] = value
    for name, value in config_envs:
        _check(name, value, "container")
        merged[name] = value
    return tuple(f"{name}={value}" for name, value in merged.items())


def check_exec_size(argv: Sequence[str], env: Sequence[str], what: str) -> None:
    """InvalidArgument when ``argv`` and ``env`` could never be exec'd (execve's E2BIG)."""
    total = 0
    for kind, strings in (("command argument", argv), ("environment variable", env)):
        for value in strings:
            size = len(value.encode(errors="surrogateescape")) + 1
            if size > MAX_STRING + 1:
                raise InvalidArgument(f"{what}: a {kind} of {size - 1} bytes is longer than the kernel's "
                                      f"{MAX_STRING} ({value[:40]!r}...)")
            total += size
    if total > MAX_TOTAL:
        raise InvalidArgument(f"{what}: command and environment take {total} bytes, more than {MAX_TOTAL}")
