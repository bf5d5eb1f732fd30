"""Where a burst's CPU goes: `perf script` samples (comm, time, callchain) split by process kind
and by what the sample's kernel stack was doing, over the window in which pods start.

    perf script -F comm,time,ip,sym | cpusplit.py FROM TO

Samples from FROM to TO seconds (CLOCK_MONOTONIC: perf record -k CLOCK_MONOTONIC; burst.py
writes its burst's window). Prints a markdown table: each process's share of the busy samples in
the window, split by category.
A sample counts in the first category whose kernel function is on its stack; the rest is user
time (Python's interpreter for pycrid's processes). Run with any python3 (no repo imports).
"""
from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Iterable, Iterator

# (label, kernel function whose presence on the stack puts a sample in that category), first match wins.
CATEGORIES = (
    ("page faults", "exc_page_fault"),
    ("fork", "copy_process"),
    ("exit", "do_exit"),
    ("execve", "__x64_sys_execve"),
    ("ext4 inode allocation", "__ext4_new_inode"),
    ("mount, pivot_root, umount", "__x64_sys_mount"),
    ("mount, pivot_root, umount", "__x64_sys_pivot_root"),
    ("mount, pivot_root, umount", "__x64_sys_umount"),
    ("unshare, setns", "__x64_sys_unshare"),
    ("unshare, setns", "__x64_sys_setns"),
    ("netlink", "netlink_sendmsg"),
    ("cgroup mkdir, attach", "cgroup_mkdir"),
    ("cgroup mkdir, attach", "cgroup_attach_task"),
    ("fsync", "__x64_sys_fsync"),
    ("other system calls", "do_syscall_64"),
)
USER = "user"
IDLE = "swapper"


def samples(lines: Iterable[str]) -> Iterator[tuple[str, float, set[str]]]:
    """(comm, time, the functions on its stack) per sample of `perf script -F comm,time,ip,sym`."""
    comm: str | None = None
    when, stack = 0.0, set[str]()
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, when, stack
            comm = None
        elif not line[0].isspace():
            if comm is not None:
                yield comm, when, stack
            head = line.split()
            # the comm may hold spaces; the time is the first field ending in ':' after it
            at = next(i for i, field in enumerate(head)
                      if field.endswith(":") and field[:-1].replace(".", "").isdigit())
            comm, when, stack = " ".join(head[:at]), float(head[at][:-1]), set()
        else:
            fields = line.split()
            if len(fields) >= 2:
                stack.add(fields[1].split("+")[0])
    if comm is not None:
        yield comm, when, stack


def category(stack: set[str]) -> str:
    return next((label for label, function in CATEGORIES if function in stack), USER)


def split(lines: Iterable[str], lo: float, hi: float) -> tuple[int, int, dict[str, collections.Counter[str]]]:
    """(busy samples, idle samples, {comm: {category: samples}}) in the window. pycrid's processes
    have comms of their own (pycrid-monitor, -start, -pause, -forkserver); python is the agent,
    and the client driving the burst."""
    busy, idle = 0, 0
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for comm, when, stack in samples(lines):
        if not lo <= when <= hi:
            continue
        if comm == IDLE:
            idle += 1
            continue
        busy += 1
        table[comm][category(stack)] += 1
    return busy, idle, table


def report(busy: int, idle: int, table: dict[str, collections.Counter[str]], top: int = 8) -> str:
    labels = [USER, *dict.fromkeys(label for label, _ in CATEGORIES)]
    kinds = sorted(table, key=lambda k: -sum(table[k].values()))[:top]
    total = collections.Counter[str]()
    for counts in table.values():
        total.update(counts)
    used = [label for label in labels if total[label]]
    lines = [f"busy {100 * busy / max(busy + idle, 1):.0f}% of the samples in the window ({busy} busy); "
             "shares of the busy samples, %:", "",
             "| process | all | " + " | ".join(used) + " |", "|---|---:|" + "---:|" * len(used)]
    for k in kinds:
        row = [f"{100 * table[k][label] / busy:.1f}" for label in used]
        lines.append(f"| {k} | {100 * sum(table[k].values()) / busy:.1f} | " + " | ".join(row) + " |")
    lines.append("| **all** | 100 | " + " | ".join(f"**{100 * total[label] / busy:.1f}**" for label in used) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("start", type=float, help="CLOCK_MONOTONIC seconds")
    ap.add_argument("end", type=float)
    args = ap.parse_args()
    busy, idle, table = split(sys.stdin, args.start, args.end)
    if not busy:
        raise SystemExit("cpusplit: no busy sample in the window (was perf recording with -k CLOCK_MONOTONIC?)")
    print(report(busy, idle, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
