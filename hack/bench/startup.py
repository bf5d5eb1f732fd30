"""Pod startup latency as Kubernetes measures its SLO, on a hack/cluster cluster (stdlib only; run by
startup.sh).

    startup.py measure RUNTIME OUT.json --pods N [--round K] [--endpoint CRI]
        on the cluster $PYCRID_CLUSTER_DIR names (hack/cluster/kubectl): the image pulled
        through a warm-up pod, then one round, added to OUT.json's: N pods created by one
        `kubectl create`, each pod's latency from its creation to its Ready condition as a
        watch sees them, then `kubectl delete` of all N and the time until the watch has seen
        every one go. With the runtime's CRI endpoint, each latency is also split where the
        runtime's own times (through crictl: the sandbox's creation, the container's start)
        fall in it: before the runtime got the pod, in it, and after its container started.
        The kubelet's own view of the round is kept too, from its /metrics before and after
        it: its relists (how many, how long) and its CRI calls (how many of each, how long).
    startup.py report A.json B.json ...       the markdown table of the runs

The upstream SLO (pod startup latency, p99 <= 5 s for stateless pods with pulled images) is
measured from creation to all containers running as a watch observes them; both ends here are the
arrival times of one watch's events, so the clock and the watch delay are the same for both.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

KUBECTL = str(Path(__file__).resolve().parents[1] / "cluster" / "kubectl")
NAMESPACE = "startup-bench"
IMAGE = "busybox:1"
# Exits at once on SIGTERM, so deleting measures the runtimes, not a grace period.
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"containers": [{"name": "main", "image": IMAGE, "command": IDLE,
                                     "imagePullPolicy": "IfNotPresent"}]}}


class Watch:
    """`kubectl get pods --watch`: when each pod was first seen, seen Ready, and seen deleted."""

    def __init__(self) -> None:
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self._changed = threading.Condition()
        self._process = subprocess.Popen([KUBECTL, "-n", NAMESPACE, "get", "pods", "--watch",
                                          "--output-watch-events", "-o", "json"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        assert self._process.stdout is not None
        while chunk := os.read(self._process.stdout.fileno(), 1 << 16):
            now = time.monotonic()
            buffer += chunk.decode()
            while True:
                buffer = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(buffer)
                except json.JSONDecodeError:
                    break
                buffer = buffer[end:]
                self._record(event, now)

    def _record(self, event: dict[str, Any], now: float) -> None:
        obj = event["object"]
        name = obj["metadata"]["name"]
        with self._changed:
            self.added.setdefault(name, now)
            if event["type"] == "DELETED":
                self.deleted.setdefault(name, now)
            elif any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"].get("conditions", ())):
                self.ready.setdefault(name, now)
            self._changed.notify_all()

    def wait(self, what: str, done: Any, timeout: float = 300) -> None:
        with self._changed:
            if not self._changed.wait_for(done, timeout):
                raise SystemExit(f"startup.py: timed out waiting for {what}")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def crictl_json(endpoint: str, *args: str) -> list[Any]:
    """Every JSON document crictl prints (inspect of several ids prints them as one list)."""
    done = subprocess.run(["crictl", "--runtime-endpoint", endpoint, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"crictl {' '.join(args)}: {done.stderr.strip()}")
    decoder, text, found = json.JSONDecoder(), done.stdout, []
    while text := text.lstrip():
        document, end = decoder.raw_decode(text)
        found.extend(document if isinstance(document, list) else [document])
        text = text[end:]
    return found


def rfc3339_seconds(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds (crictl's startedAt)."""
    match = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    if match is None:
        raise SystemExit(f"startup.py: not an RFC 3339 time: {stamp!r}")
    whole = datetime.datetime.fromisoformat(match[1] + match[3]).timestamp()
    return whole + (float(f"0.{match[2]}") if match[2] else 0.0)


def runtime_times(endpoint: str) -> dict[str, tuple[float, float]]:
    """Per pod of the namespace, by name: (its sandbox's creation, its container's start), wall clock."""
    sandboxes = crictl_json(endpoint, "pods", "--namespace", NAMESPACE, "-o", "json")[0]["items"]
    created = {s["id"]: (s["metadata"]["name"], int(s["createdAt"]) / 1e9) for s in sandboxes}
    containers = crictl_json(endpoint, "ps", "-a", "-o", "json")[0]["containers"]
    mine = [c["id"] for c in containers if c["podSandboxId"] in created]
    sandbox_of = {c["id"]: c["podSandboxId"] for c in containers}
    times = {}
    for document in crictl_json(endpoint, "inspect", "-o", "json", *mine) if mine else []:
        status = document["status"]
        name, sandbox_created = created[sandbox_of[status["id"]]]
        times[name] = (sandbox_created, rfc3339_seconds(status["startedAt"]))
    return times


# kubelet histograms whose _sum and _count deltas over a round say what the kubelet waited on
RELIST = "kubelet_pleg_relist_duration_seconds"
CRI_CALLS = "kubelet_runtime_operations_duration_seconds"
RELIST_CALLS = ["list_podsandbox", "list_containers", "podsandbox_status", "container_status"]
START_CALLS = ["run_podsandbox", "create_container", "start_container"]
SAMPLE = re.compile(r'^(\w+?)_(sum|count)(?:\{(?:.*,)?operation_type="(\w+)"[^}]*\})? ([0-9.e+-]+)$')


def kubelet_sums() -> dict[str, float]:
    """{"<histogram>[/<operation>]_sum|_count": value} of the relist and CRI call histograms."""
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").strip()
    found: dict[str, float] = {}
    for line in kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics").splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) in (RELIST, CRI_CALLS):
            key = m.group(1) + (f"/{m.group(3)}" if m.group(3) else "")
            found[f"{key}_{m.group(2)}"] = found.get(f"{key}_{m.group(2)}", 0.0) + float(m.group(4))
    return found


def round_of(pods: int, number: int, endpoint: str | None = None) -> dict[str, Any]:
    names = [f"r{number}-p{i:03d}" for i in range(pods)]
    watch = Watch()
    before = kubelet_sums()
    try:
        time.sleep(1)  # the watch is established before the first pod is created
        kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": [pod(n) for n in names]}))
        watch.wait(f"{pods} pods Ready", lambda: all(n in watch.ready for n in names))
        latencies = sorted(watch.ready[n] - watch.added[n] for n in names)
        after = kubelet_sums()
        kubelet = {k: after[k] - before.get(k, 0.0) for k in after}
        split = {}
        if endpoint:
            times = runtime_times(endpoint)
            wall = time.time() - time.monotonic()  # the watch's times on the CRI's clock
            # (before the runtime had the pod, in the runtime, after its container started), s
            split = {n: (times[n][0] - (watch.added[n] + wall), times[n][1] - times[n][0],
                         watch.ready[n] + wall - times[n][1]) for n in names}
        start = time.monotonic()
        kubectl("-n", NAMESPACE, "delete", "pods", "--all", "--wait=false")
        watch.wait(f"{pods} pods deleted", lambda: all(n in watch.deleted for n in names))
        delete_all = max(watch.deleted[n] for n in names) - start
    finally:
        watch.stop()
    # CLOCK_MONOTONIC, as `perf record -k CLOCK_MONOTONIC` stamps its samples (startup-profile.sh)
    window = (min(watch.added[n] for n in names), max(watch.ready[n] for n in names))
    return {"latencies": latencies, "delete_all": delete_all, "split": split, "window": window,
            "kubelet": kubelet}


def measure(runtime: str, out: Path, pods: int, number: int, endpoint: str | None) -> None:
    """One round, added to the rounds ``out`` already holds (startup.sh alternates the runtimes)."""
    earlier = json.loads(out.read_text())["rounds"] if out.exists() else []
    kubectl("create", "namespace", NAMESPACE)
    try:
        kubectl("-n", NAMESPACE, "run", "warm-up", f"--image={IMAGE}", "--restart=Never", "--command", "--", "true")
        kubectl("-n", NAMESPACE, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/warm-up", "--timeout=120s")
        kubectl("-n", NAMESPACE, "delete", "pod", "warm-up")
        result = round_of(pods, number, endpoint)
        print(f"startup.py: {runtime} round {number}: p50 {percentile(result['latencies'], 50):.3f} s, "
              f"p99 {percentile(result['latencies'], 99):.3f} s, delete all {result['delete_all']:.2f} s",
              file=sys.stderr)
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--timeout=180s")
    out.write_text(json.dumps({"runtime": runtime, "pods": pods, "rounds": [*earlier, result]}, indent=1))


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as the Kubernetes perf tests compute their percentiles."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(paths: list[Path]) -> None:
    runs = [json.loads(p.read_text()) for p in paths]
    print(f"### Pod startup latency: {runs[0]['pods']} pods created at once, image pulled, creation to Ready")
    print()
    print("| runtime | rounds | p50 | p90 | p99 | max | delete all (median) |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        latencies = [x for r in run["rounds"] for x in r["latencies"]]
        deletes = statistics.median(r["delete_all"] for r in run["rounds"])
        cells = [f"{percentile(latencies, p):.2f} s" for p in (50, 90, 99)] + [f"{max(latencies):.2f} s"]
        print(f"| {run['runtime']} | {len(run['rounds'])} | {' | '.join(cells)} | {deletes:.2f} s |")
    p99 = {run["runtime"]: percentile([x for r in run["rounds"] for x in r["latencies"]], 99) for run in runs}
    anchors = [name for name in p99 if name != "pycrid"]
    if "pycrid" in p99 and anchors:
        print()
        print("pycrid's p99 over each anchor's: "
              + ", ".join(f"{name} {p99['pycrid'] / p99[name]:.2f}" for name in anchors))
    splits = {run["runtime"]: [v for r in run["rounds"] for v in r.get("split", {}).values()] for run in runs}
    if all(splits.values()):
        print()
        print("Each pod's latency split at the runtime's own times (CRI: the sandbox's creation, the container's")
        print("start): before the runtime had the pod (scheduling, the kubelet's pod worker), in the runtime")
        print("(RunPodSandbox to the container's start, with the kubelet's steps between the calls), and after")
        print("(the kubelet seeing the start, its status update, the watch):")
        print()
        print("| runtime | before p50 | before p99 | runtime p50 | runtime p99 | after p50 | after p99 |")
        print("|---|---|---|---|---|---|---|")
        for runtime, values in splits.items():
            cells = [f"{percentile([v[i] for v in values], p):.2f} s" for i in range(3) for p in (50, 99)]
            print(f"| {runtime} | {' | '.join(cells)} |")
    if all(r.get("kubelet") for run in runs for r in run["rounds"]):
        kubelet_view(runs)


def kubelet_view(runs: list[dict[str, Any]]) -> None:
    """The kubelet's relists and CRI calls from each round's creation to its last pod Ready."""
    totals = {run["runtime"]: _pooled([r["kubelet"] for r in run["rounds"]]) for run in runs}
    ops = RELIST_CALLS + START_CALLS
    print()
    print("The kubelet's own view, from its /metrics over each round until its last pod was Ready (all")
    print("rounds pooled): its relists (the generic PLEG's, every second), their mean duration, and its CRI")
    print("calls, count and mean latency as the kubelet timed them:")
    print()
    print("| runtime | relists | relist mean | " + " | ".join(ops) + " |")
    print("|---|---:|---:|" + "---:|" * len(ops))
    for runtime, t in totals.items():
        cells = [_mean_cell(t, f"{CRI_CALLS}/{op}") for op in ops]
        relists = t.get(f"{RELIST}_count", 0.0)
        relist_mean = 1000 * t.get(f"{RELIST}_sum", 0.0) / relists if relists else 0.0
        print(f"| {runtime} | {relists:.0f} | {relist_mean:.0f} ms | " + " | ".join(cells) + " |")


def _pooled(rounds: list[dict[str, float]]) -> dict[str, float]:
    pooled: dict[str, float] = {}
    for r in rounds:
        for k, v in r.items():
            pooled[k] = pooled.get(k, 0.0) + v
    return pooled


def _mean_cell(t: dict[str, float], key: str) -> str:
    count = t.get(f"{key}_count", 0.0)
    return f"{count:.0f} × {1000 * t[key + '_sum'] / count:.1f} ms" if count else "-"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="startup.py")
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("measure")
    m.add_argument("runtime")
    m.add_argument("out", type=Path)
    m.add_argument("--pods", type=int, default=30)
    m.add_argument("--round", type=int, default=1, help="its number, for the log")
    m.add_argument("--endpoint", help="the runtime's CRI endpoint, to split each latency at its times")
    r = commands.add_parser("report")
    r.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "measure":
        measure(args.runtime, args.out, args.pods, args.round, args.endpoint)
    else:
        report(args.runs)


if __name__ == "__main__":
    main(sys.argv[1:])
