"""Measurements and markdown reports for hack/bench (stdlib only; run by pods.sh and pull.sh).

    bench.py pods RUNTIME DIR OUT.json --count N --image REF --logs DIR
        start N pods of one container each through crictl (runp, create, start), record each
        call's wall time and the memory of the runtime's own processes before and with all N
        running (PSS, its anonymous part, by process name, and every page counted once), then
        stop and remove each pod (stopp, rmp); RUNTIME is pycrid, containerd or containerd2, DIR the one its
        hack/bench/RUNTIME.sh started (it holds crictl.yaml and the daemon's pid file)
    bench.py pods-report pycrid=PYCRID.json containerd=C.json containerd2=C2.json
    bench.py rpcs-report pycrid=DIR containerd=DIR containerd2=DIR ...   critest -benchmark's outputs
        (a runtime may come with several dirs, one per pass; their datapoints are pooled)
    bench.py pull-report TIMES.tsv BYTES      TIMES.tsv: lines "RUNTIME ROUND SECONDS"
    bench.py scrape DIR URL COUNT... --image REF --logs DIR --cgroup-parent PATH
        grow pycrid (hack/bench/pycrid.sh started in DIR, metrics on URL) to each COUNT of running
        containers, one per pod, each pod with a cgroup_parent of its own under PATH; time
        scrapes of URL at each count; print a markdown section with the cost per container

Every report has pycrid's figures, each anchor's (containerd 1.6 and 2.x) and pycrid's ratio to each.

Times are wall times around whole crictl processes (time.perf_counter_ns), so each includes
crictl's own start-up; `crictl version` is timed as well so that overhead can be subtracted.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

VERSION_SAMPLES = 5


class BenchError(Exception):
    """A crictl call failed; the message says which, with crictl's stderr."""


def crictl(config: Path, *args: str) -> tuple[float, str]:
    """Runs crictl against one runtime; returns (wall ms, stdout)."""
    t0 = time.perf_counter_ns()
    p = subprocess.run(["crictl", "--config", str(config), *args], capture_output=True, text=True)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        raise BenchError(f"crictl {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return ms, p.stdout.strip()


# --- the runtime's own processes --------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, comm, cmdline with spaces) for every process readable now."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # exited while we looked
        # comm is in parentheses and may itself hold spaces or parentheses.
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        table[int(entry)] = (ppid, comm, cmdline)
    return table


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _descendants(table: dict[int, tuple[int, str, str]], roots: set[int]) -> set[int]:
    found, todo = set(roots), list(roots)
    while todo:
        parent = todo.pop()
        for pid, (ppid, _, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def pycrid_processes(run_dir: Path) -> dict[int, str]:
    """pid -> name of pycrid's own processes: `pycrid serve` (the agent), its fork server, every pod
    monitor, the pods' pause processes (the sandbox image's binary, or pycrid's built-in one) and
    any short-lived helper running at the time (a container init being set up, an exec child, a
    layer unpacker), as containerd's count has containerd, its shims and their pause containers.
    The containers' own processes are not the runtime's.

    The fork server and the monitors (forks of it, sharing its command line) are found by that
    command line, which names the state dir, so a monitor whose fork server died still counts; the
    rest are their descendants still running the interpreter, and each monitor's pause child."""
    serve = int((run_dir / "pycrid.pid").read_text())
    table = _proc_table()
    forkserver = f"runtime.process.forkserver {run_dir}/run/forkserver.sock"
    tree = _descendants(table, {serve} | {pid for pid, (_, _, cmd) in table.items() if forkserver in cmd})
    python = _exe(serve)
    monitors = {pid for pid in tree if table[pid][1] == "pycrid-monitor"}
    own = {pid for pid in tree if _exe(pid) == python or (table[pid][0] in monitors and table[pid][1] == "pause")}
    return {pid: "pycrid serve" if pid == serve else table[pid][1] for pid in own}


def containerd_processes(run_dir: Path) -> dict[int, str]:
    """pid -> name: containerd, the shims it started (they re-parent to init; each names our
    socket) and the shims' pause processes; the containers' own processes are not the runtime's."""
    daemon = int((run_dir / "containerd.pid").read_text())
    table = _proc_table()
    address = f"-address {run_dir}/containerd.sock"
    shims = {pid for pid, (_, _, cmd) in table.items()
             if cmd.split(" ", 1)[0].endswith("containerd-shim-runc-v2") and
             (cmd.endswith(address) or f"{address} " in cmd)}
    pause = {pid for pid, (ppid, comm, _) in table.items() if ppid in shims and comm == "pause"}
    return {pid: table[pid][1] for pid in {daemon} | shims | pause if pid in table}


RUNTIMES = {"pycrid": pycrid_processes, "containerd": containerd_processes, "containerd2": containerd_processes}
# From smaps_rollup: anonymous memory is the process's own data; file-backed memory (binaries and
# shared libraries) is shared with every process on the machine that maps the same files, so its
# PSS share also depends on what else runs here (other Python programs share libpython with pycrid).
MEMORY_FIELDS = ("Pss", "Pss_Anon", "Pss_File")
PRESENT, PFN_MASK = 1 << 63, (1 << 55) - 1  # /proc/PID/pagemap: page present, its frame number


def memory_by_name(processes: dict[int, str]) -> dict[str, list[int]]:
    """name -> [processes, PSS kB, anonymous PSS kB, file-backed PSS kB]: where a runtime's memory goes."""
    table: dict[str, list[int]] = {}
    for pid, name in processes.items():
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                values = dict(line.split()[:2] for line in f if line.split(":")[0] in MEMORY_FIELDS)
        except OSError:
            continue  # exited since we listed it
        entry = table.setdefault(name, [0, 0, 0, 0])
        entry[0] += 1
        for i, field in enumerate(MEMORY_FIELDS, 1):
            entry[i] += int(values.get(f"{field}:", 0))
    return table


def distinct_kb(pids: Iterable[int]) -> int:
    """Resident memory mapped by any of ``pids``, each page counted once (by its page frame, from
    /proc/PID/pagemap; needs root): what the processes hold between them, whatever else on the
    machine maps the same files, unlike PSS."""
    frames: set[int] = set()
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
                for line in maps:
                    if line.rstrip().endswith("[vsyscall]"):
                        continue  # outside the process's page tables
                    start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                    pagemap.seek(start // page * 8)
                    entries = struct.iter_unpack("<Q", pagemap.read((end - start) // page * 8))
                    frames.update(entry & PFN_MASK for (entry,) in entries if entry & PRESENT)
        except OSError:
            continue  # exited since we listed it
    return len(frames) * page // 1024


def total_kb(by_name: dict[str, list[int]], column: int = 1) -> int:
    """Summed over the runtime's processes: column 1 PSS, 2 anonymous PSS, 3 file-backed PSS."""
    return sum(entry[column] for entry in by_name.values())


# --- pods --------------------------------------------------------------------------------------

def pod_config(run_dir: Path, logs: Path, runtime: str, index: int, cgroup_parent: str) -> Path:
    name = f"bench-{index:02d}"
    config = {
        "metadata": {"name": name, "namespace": "pycrid-bench", "uid": f"{runtime}-{name}-{os.getpid()}",
                     "attempt": 0},
        "log_directory": str(logs / name),
        "linux": {"cgroup_parent": cgroup_parent},
    }
    path = run_dir / f"pod-{index:02d}.json"
    path.write_text(json.dumps(config))
    return path


def container_config(run_dir: Path, image: str) -> Path:
    config = {"metadata": {"name": "sleep"}, "image": {"image": image},
              "command": ["sleep", "3600"], "log_path": "sleep.log"}
    path = run_dir / "container.json"
    path.write_text(json.dumps(config))
    return path


def measure_pods(runtime: str, run_dir: Path, count: int, image: str, logs: Path,
                 cgroup_parent: str) -> dict:
    cfg = run_dir / "crictl.yaml"
    processes = RUNTIMES[runtime]
    version_ms = [crictl(cfg, "version")[0] for _ in range(VERSION_SAMPLES)]
    idle_processes = processes(run_dir)
    idle, idle_distinct = memory_by_name(idle_processes), distinct_kb(idle_processes)
    ctr = container_config(run_dir, image)
    pods, runp_ms, create_ms, start_ms = [], [], [], []
    for i in range(count):
        pod = pod_config(run_dir, logs, runtime, i, cgroup_parent)
        t_runp, pod_id = crictl(cfg, "runp", str(pod))
        t_create, ctr_id = crictl(cfg, "create", pod_id, str(ctr), str(pod))
        t_start, _ = crictl(cfg, "start", ctr_id)
        pods.append(pod_id)
        runp_ms.append(t_runp)
        create_ms.append(t_create)
        start_ms.append(t_start)
    running = crictl(cfg, "ps", "--state", "running", "--quiet")[1].split()
    if len(running) != count:
        raise BenchError(f"{len(running)} of {count} containers are running after start")
    loaded_processes = processes(run_dir)
    loaded, loaded_distinct = memory_by_name(loaded_processes), distinct_kb(loaded_processes)
    stopp_ms, rmp_ms = [], []
    for pod_id in pods:
        stopp_ms.append(crictl(cfg, "stopp", pod_id)[0])
        rmp_ms.append(crictl(cfg, "rmp", pod_id)[0])
    return {
        "runtime": runtime, "count": count,
        "crictl_version_ms": version_ms,
        "runp_ms": runp_ms, "create_ms": create_ms, "start_ms": start_ms,
        "stopp_ms": stopp_ms, "rmp_ms": rmp_ms,
        "pss_idle_kb": total_kb(idle), "pss_anon_idle_kb": total_kb(idle, 2),
        "processes_idle": sum(entry[0] for entry in idle.values()),
        "pss_loaded_kb": total_kb(loaded), "pss_anon_loaded_kb": total_kb(loaded, 2),
        "processes_loaded": sum(entry[0] for entry in loaded.values()),
        "memory_idle_by_name": idle, "memory_loaded_by_name": loaded,
        "distinct_idle_kb": idle_distinct, "distinct_loaded_kb": loaded_distinct,
    }


# --- scrapes ------------------------------------------------------------------------------------

SCRAPES = 15
SETTLE_S = 3  # what follows a burst of starts (kernel RCU and cgroup work) passes first


def scrape_once(url: str) -> tuple[float, int]:
    """One scrape as Prometheus makes it (gzip accepted; pycrid answers loopback plainly), timed
    to the last byte: (ms, lines)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    t0 = time.perf_counter_ns()
    with urllib.request.urlopen(request, timeout=60) as r:
        body = r.read()
        gzipped = r.headers["Content-Encoding"] == "gzip"
    ms = (time.perf_counter_ns() - t0) / 1e6
    return ms, (gzip.decompress(body) if gzipped else body).count(b"\n")


def measure_scrapes(run_dir: Path, url: str, counts: list[int], image: str, logs: Path,
                    cgroup_parent: str) -> list[tuple[int, list[float], int]]:
    """(containers, scrape ms, lines) per count."""
    cfg = run_dir / "crictl.yaml"
    ctr = container_config(run_dir, image)
    running, results = 0, []
    for count in sorted(counts):
        while running < count:
            pod = pod_config(run_dir, logs, "pycrid", running, f"{cgroup_parent}/pod{running}")
            pod_id = crictl(cfg, "runp", str(pod))[1]
            crictl(cfg, "start", crictl(cfg, "create", pod_id, str(ctr), str(pod))[1])
            running += 1
        time.sleep(SETTLE_S)
        scrape_once(url)  # warm: device names, files held open
        samples = [scrape_once(url) for _ in range(SCRAPES)]
        results.append((count, [ms for ms, _ in samples], samples[0][1]))
        print(f"bench.py: {count} containers: scrape median {statistics.median(results[-1][1]):.1f} ms",
              file=sys.stderr)
    return results


def scrape_report(results: list[tuple[int, list[float], int]]) -> str:
    lines = [f"### Scrape cost of /metrics (pycrid; {SCRAPES} scrapes per count, one container per pod)", "",
             "| containers | lines | median, ms | min, ms |", "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {lines_} | {statistics.median(ms):.1f} | {min(ms):.1f} |" for n, ms, lines_ in results]
    if len(results) > 1:
        xs = [n for n, _, _ in results]
        slopes = []
        for label, pick in (("medians", statistics.median), ("minimums", min)):
            slope, _ = statistics.linear_regression(xs, [pick(ms) for _, ms, _ in results])
            slopes.append(f"{label} **{slope:.3f}**")
        lines += ["", f"Cost per container ({xs[0]} to {xs[-1]} containers, least squares): "
                      + ", ".join(slopes) + " ms (goal ≤ 0.25)."]
    return "\n".join(lines) + "\n"


# --- reports -----------------------------------------------------------------------------------

def pct(values: list[float], p: int) -> float:
    """The p-th percentile, interpolated between the closest ranks (p50 is the median)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


# The anchors pycrid is compared with, in the tables' order (lib.sh's RUNTIMES after pycrid).
ANCHORS = {"containerd": "containerd 1.6", "containerd2": "containerd 2.x"}


def header(anchors: list[str]) -> list[str]:
    """A table's head: pycrid, each anchor, then pycrid's ratio to each anchor."""
    names = [ANCHORS[a] for a in anchors]
    cells = ["", "pycrid", *names, *(f"pycrid / {n}" for n in names)]
    return ["| " + " | ".join(cells) + " |", "|---|" + "---:|" * (len(cells) - 1)]


def row(label: str, values: dict[str, float], anchors: list[str], digits: int = 1, bold: bool = False,
        goal: str = "") -> str:
    """One line: pycrid's value, each anchor's, and pycrid's ratio to each (bold for a headline)."""
    mark = "**" if bold else ""
    p = values["pycrid"]
    cells = [f"{mark}{label}{mark}", f"{p:.{digits}f}", *(f"{values[a]:.{digits}f}" for a in anchors)]
    cells += [f"{mark}{ratio(p, values[a])}{mark}{goal}" for a in anchors]
    return "| " + " | ".join(cells) + " |"


def by_name(memory: dict[str, list[int]]) -> str:
    items = sorted(memory.items(), key=lambda item: -item[1][1])
    return ", ".join(f"`{name}` ×{n} {kb / 1024:.1f} MiB" for name, (n, kb, _, _) in items)


def per_pod_by_name(r: dict) -> str:
    """What each kind of process adds per pod (loaded minus idle, over the pod count): a fork
    server's share goes down as the monitors forked from it share its pages."""
    idle, loaded = r["memory_idle_by_name"], r["memory_loaded_by_name"]
    deltas = {name: (loaded.get(name, [0, 0])[1] - idle.get(name, [0, 0])[1]) / r["count"]
              for name in {*idle, *loaded}}
    return ", ".join(f"`{name}` {kb / 1024:+.2f}" for name, kb in sorted(deltas.items(), key=lambda item: -item[1]))


def _derived(r: dict) -> dict:
    overhead = statistics.median(r["crictl_version_ms"])
    start = [a + b + s for a, b, s in zip(r["runp_ms"], r["create_ms"], r["start_ms"])]
    stop = [a + b for a, b in zip(r["stopp_ms"], r["rmp_ms"])]
    return {
        "overhead": overhead,
        "start": start, "start_net": [t - 3 * overhead for t in start],
        "stop": stop, "stop_net": [t - 2 * overhead for t in stop],
        "per_pod_kb": (r["pss_loaded_kb"] - r["pss_idle_kb"]) / r["count"],
        "per_pod_anon_kb": (r["pss_anon_loaded_kb"] - r["pss_anon_idle_kb"]) / r["count"],
        "per_pod_distinct_kb": (r["distinct_loaded_kb"] - r["distinct_idle_kb"]) / r["count"],
    }


def pods_report(results: dict[str, dict]) -> str:
    """``results``: runtime -> what measure_pods returned, pycrid first."""
    anchors = [rt for rt in results if rt != "pycrid"]
    d = {rt: _derived(r) for rt, r in results.items()}

    def each(f) -> dict[str, float]:  # type: ignore[no-untyped-def]
        return {rt: f(results[rt], d[rt]) for rt in results}

    p = results["pycrid"]
    lines = [f"### {p['count']} pods (busybox `sleep 3600`, images pre-pulled)", "", *header(anchors)]
    lines += [
        row("pod start p50 (runp+create+start), ms", each(lambda r, x: pct(x["start"], 50)), anchors),
        row("pod start p95, ms", each(lambda r, x: pct(x["start"], 95)), anchors),
        row("pod start p50 minus 3 crictl start-ups, ms", each(lambda r, x: pct(x["start_net"], 50)), anchors),
        row("pod start p95 minus 3 crictl start-ups, ms", each(lambda r, x: pct(x["start_net"], 95)), anchors),
    ]
    for key, label in (("runp_ms", "runp"), ("create_ms", "create"), ("start_ms", "start")):
        lines.append(row(f"  {label} p50, ms", each(lambda r, x, key=key: pct(r[key], 50)), anchors))
    lines += [
        row("pod stop+remove p50 (stopp+rmp), ms", each(lambda r, x: pct(x["stop"], 50)), anchors),
        row("pod stop+remove p95, ms", each(lambda r, x: pct(x["stop"], 95)), anchors),
        row("pod stop+remove p50 minus 2 crictl start-ups, ms", each(lambda r, x: pct(x["stop_net"], 50)), anchors),
        row("`crictl version` (median of 5), ms", each(lambda r, x: x["overhead"]), anchors),
        row("runtime PSS, 0 pods, MiB (processes: "
            + " / ".join(str(results[rt]["processes_idle"]) for rt in results) + ")",
            each(lambda r, x: r["pss_idle_kb"] / 1024), anchors, bold=True, goal=" (goal ≤ 1.0)"),
        row(f"runtime PSS, {p['count']} pods, MiB (processes: "
            + " / ".join(str(results[rt]["processes_loaded"]) for rt in results) + ")",
            each(lambda r, x: r["pss_loaded_kb"] / 1024), anchors),
        row("runtime PSS per pod, MiB", each(lambda r, x: x["per_pod_kb"] / 1024), anchors, 2, bold=True,
            goal=" (goal ≤ 0.5)"),
        row("runtime anonymous PSS per pod, MiB", each(lambda r, x: x["per_pod_anon_kb"] / 1024), anchors, 2),
        row("runtime memory per pod, each page counted once, MiB",
            each(lambda r, x: x["per_pod_distinct_kb"] / 1024), anchors, 2),
        "",
    ]
    for state, key in (("with " + str(p["count"]) + " pods", "memory_loaded_by_name"), ("with 0 pods", "memory_idle_by_name")):
        lines.append(f"Runtime PSS {state} by process name: "
                     + "; ".join(f"{ANCHORS.get(rt, rt)} {by_name(r[key])}" for rt, r in results.items()) + ".")
        lines.append("")
    lines += [
        "Per pod, by process name (MiB): " + "; ".join(f"{ANCHORS.get(rt, rt)} {per_pod_by_name(r)}"
                                                       for rt, r in results.items()) + ". "
        "The anonymous part is the runtime's own data; the rest is its share of binaries and libraries, "
        "which other programs on the machine that map the same files (any Python, for pycrid) also share.",
        "",
        "Start-latency ratio pycrid/anchor at p50 as measured (without crictl's start-ups): "
        + ", ".join(f"{ANCHORS[a]} **{ratio(pct(d['pycrid']['start'], 50), pct(d[a]['start'], 50))}** "
                    f"({ratio(pct(d['pycrid']['start_net'], 50), pct(d[a]['start_net'], 50))})" for a in anchors)
        + " (goal ≤ 0.3).",
    ]
    return "\n".join(lines) + "\n"


def pull_report(times: dict[str, list[float]], size: int) -> str:
    """``times``: runtime -> seconds of each round, pycrid first."""
    anchors = [rt for rt in times if rt != "pycrid"]
    rounds = len(times["pycrid"])
    mb = size / 1e6
    lines = [f"### Cold-cache pull of a {mb:.0f} MB image (5 layers of random data, gzip)", "",
             "| | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median | MB/s |",
             "|---|" + "---:|" * (rounds + 2)]
    for runtime, t in times.items():
        med = statistics.median(t)
        lines.append(f"| {ANCHORS.get(runtime, runtime)}, s | " + " | ".join(f"{x:.2f}" for x in t)
                     + f" | {med:.2f} | {mb / med:.0f} |")
    med_p = statistics.median(times["pycrid"])
    lines += ["", "Pull-time ratio pycrid/anchor (medians): "
              + ", ".join(f"{ANCHORS[a]} **{ratio(med_p, statistics.median(times[a]))}**" for a in anchors)
              + " (goal ≤ 0.8)."]
    return "\n".join(lines) + "\n"


# critest -benchmark's outputs: each a file of datapoints, one duration per operation.
CRITEST_FILES = ("pod_benchmark_data.json", "container_benchmark_data.json", "image_lifecycle_benchmark_data.json")


def rpcs_report(dirs: list[tuple[str, Path]]) -> str:
    """critest -benchmark's per-RPC durations (its JSON output) for every runtime, as means over
    all its datapoints; ``dirs``: (runtime, one output dir of it) pairs, pycrid's first."""
    runtimes = list(dict.fromkeys(rt for rt, _ in dirs))
    anchors = [rt for rt in runtimes if rt != "pycrid"]
    durations: dict[str, dict[str, list[float]]] = {rt: {} for rt in runtimes}
    for runtime, directory in dirs:
        for name in CRITEST_FILES:
            if not (directory / name).exists():
                continue  # critest skips the image benchmarks when no image count is given
            data = json.loads((directory / name).read_text())
            for i, op in enumerate(data["operationsNames"]):
                durations[runtime].setdefault(op, []).extend(
                    d["operationsDurationsNs"][i] / 1e6 for d in data["datapoints"])
    means = {rt: {op: statistics.mean(ms) for op, ms in ops.items()} for rt, ops in durations.items()}
    samples = {op: len(ms) for op, ms in durations["pycrid"].items()}
    ops = [op for op in means[anchors[0]] if all(op in means[rt] for rt in runtimes)]
    start = ("CreatePod", "CreateContainer", "StartContainer")
    lines = ["### CRI call latency as critest -benchmark measures it (means, ms; no crictl processes)", "",
             *header(anchors)]
    lines += [row(f"{op} ({samples[op]} samples)", {rt: means[rt][op] for rt in runtimes}, anchors,
                  bold=op == "PullImage", goal=" (goal ≤ 0.8)" if op == "PullImage" else "") for op in ops]
    lines.append(row("RunPodSandbox + CreateContainer + StartContainer",
                     {rt: sum(means[rt][op] for op in start) for rt in runtimes}, anchors, bold=True,
                     goal=" (goal ≤ 0.15)"))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    pods = sub.add_parser("pods")
    pods.add_argument("runtime", choices=sorted(RUNTIMES))
    pods.add_argument("dir", type=Path)
    pods.add_argument("out", type=Path)
    pods.add_argument("--count", type=int, default=20)
    pods.add_argument("--image", required=True)
    pods.add_argument("--logs", type=Path, required=True)
    pods.add_argument("--cgroup-parent", required=True)
    report = sub.add_parser("pods-report", help="RUNTIME=FILE.json ..., pycrid first")
    report.add_argument("results", nargs="+")
    rpcs = sub.add_parser("rpcs-report", help="RUNTIME=DIR ..., pycrid first")
    rpcs.add_argument("results", nargs="+")
    scrape = sub.add_parser("scrape")
    scrape.add_argument("dir", type=Path)
    scrape.add_argument("url")
    scrape.add_argument("counts", type=int, nargs="+")
    scrape.add_argument("--image", required=True)
    scrape.add_argument("--logs", type=Path, required=True)
    scrape.add_argument("--cgroup-parent", required=True)
    pull = sub.add_parser("pull-report")
    pull.add_argument("times", type=Path)
    pull.add_argument("bytes", type=int)
    args = ap.parse_args()

    if args.command == "pods":
        try:
            result = measure_pods(args.runtime, args.dir.resolve(), args.count, args.image, args.logs,
                                  args.cgroup_parent)
        except BenchError as e:
            print(f"bench.py: {args.runtime}: {e}", file=sys.stderr)
            return 1
        args.out.write_text(json.dumps(result, indent=1))
    elif args.command == "scrape":
        try:
            results = measure_scrapes(args.dir.resolve(), args.url, args.counts, args.image, args.logs,
                                      args.cgroup_parent)
        except BenchError as e:
            print(f"bench.py: scrape: {e}", file=sys.stderr)
            return 1
        print(scrape_report(results), end="")
    elif args.command == "rpcs-report":
        print(rpcs_report([(rt, Path(path)) for rt, path in (a.split("=", 1) for a in args.results)]), end="")
    elif args.command == "pods-report":
        print(pods_report({rt: json.loads(Path(path).read_text())
                           for rt, path in (a.split("=", 1) for a in args.results)}), end="")
    else:
        times: dict[str, list[float]] = {"pycrid": []}
        for line in args.times.read_text().splitlines():
            runtime, _round, seconds = line.split()
            times.setdefault(runtime, []).append(float(seconds))
        print(pull_report(times, args.bytes), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
