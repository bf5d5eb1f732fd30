"""Where each call's time went, from the log of a pycrid run with PYCRID_TRACE=1 (one line per
call: its duration and the duration of each phase it marked, agent, monitor and init).

    tracephases.py PYCRID.LOG [METHOD...]     default methods: RunPodSandbox StartContainer

Prints a markdown table per method: each phase's median and maximum over the calls, in ms, in the
order the phases first appear. Phases nest (monitor.* holds init.*); they do not add up.
Run with any python3 (no repo imports).
"""
from __future__ import annotations

import re
import statistics
import sys
from collections.abc import Iterable

FIELD = re.compile(r"([\w.]+)=([\d.]+)")


def phases(lines: Iterable[str], method: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in lines:
        if "logger=pycrid.trace" not in line or f"rpc={method} " not in line:
            continue
        for name, value in FIELD.findall(line.split("msg=", 1)[1]):
            found.setdefault(name, []).append(float(value))
    return found


def table(method: str, found: dict[str, list[float]]) -> str:
    calls = len(found.get("duration_ms", []))
    lines = [f"#### {method}: {calls} calls", "", "| phase | median, ms | max, ms |", "|---|---:|---:|"]
    lines += [f"| {name} | {statistics.median(v):.1f} | {max(v):.1f} |" for name, v in found.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    text = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
    for method in sys.argv[2:] or ["RunPodSandbox", "StartContainer"]:
        print(table(method, phases(text, method)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
