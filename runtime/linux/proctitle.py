"""A forked process's command line, rewritten in place (what /proc/PID/cmdline, ps and pgrep show).

The kernel reads a process's command line from its own memory, between the addresses that
/proc/self/stat gives (arg_start..arg_end, the environment after it). A title written over that area
and ending before its last byte is read up to its first NUL, so it may run on into the environment's
strings (setproctitle's trick); those must then no longer be in use: clear the C environment
first (rewrite_cmdline does). Needs no privilege, unlike prctl(PR_SET_MM).
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ArgArea:
    start: int  # arg_start: the first byte of argv[0]
    end: int  # arg_end: one past argv's last NUL
    capacity: int  # bytes a title may use, its NUL included (into the environment's area)


def arg_area() -> ArgArea:
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    # Fields after the command name (in parentheses, which may hold anything): state is field 3,
    # arg_start..env_end are fields 48..51.
    fields = stat[stat.rindex(b")") + 2:].split()
    arg_start, arg_end, env_start, env_end = (int(x) for x in fields[45:49])
    # The kernel reads past arg_end only into an environment that directly follows argv.
    limit = env_end if env_start == arg_end and env_end >= env_start else arg_end
    return ArgArea(arg_start, arg_end, limit - arg_start)


def title_fits(args: list[str]) -> bool:
    return len(_title(args)) <= arg_area().capacity


def rewrite_cmdline(args: list[str], env: dict[str, str]) -> None:
    """This process's command line becomes ``args`` (space-separated, as ps shows any) and its
    environment ``env``; the old environment's strings are overwritten."""
    title, area = _title(args), arg_area()
    if len(title) > area.capacity:
        raise ValueError(f"a command line of {len(title)} bytes does not fit in {area.capacity}")
    _libc.clearenv()  # no environ pointer into the area any more
    os.environ.clear()
    os.environ.update(env)
    ctypes.memset(area.start, 0, area.capacity)
    ctypes.memmove(area.start, title, len(title))
    if len(title) < area.end - area.start:
        # argv's last byte not NUL: the kernel reads the title up to its own NUL.
        ctypes.memset(area.end - 1, 0x20, 1)


def _title(args: list[str]) -> bytes:
    return " ".join(args).encode() + b"\0"
