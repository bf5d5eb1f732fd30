"""N pods started at once through the CRI's gRPC API, as a kubelet given N pods does (one thread
per pod: RunPodSandbox, CreateContainer, StartContainer), then stopped and removed one by one.
Run with pycrid's venv Python from the repo root (it uses cri/api/v1's stubs).

    burst.py run ENDPOINT OUT.json --count N --image REF --logs DIR --cgroup-parent PATH [--sequential]
        one burst against one runtime: every call's latency, and each pod's from the burst's
        start until its container runs (create→Running, as the kubelet's startup latency counts);
        --sequential starts the pods one after another instead (a profile of the calls alone)
    burst.py report pycrid=A.json,B.json containerd=... containerd2=...
        rounds pooled per runtime; a markdown section with pycrid's ratio to each anchor
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # the repo: cri/api/v1's stubs
from bench import ANCHORS, header, pct, row  # noqa: E402


def run(endpoint: str, out: Path, count: int, image: str, logs: Path, cgroup_parent: str,
        sequential: bool = False) -> None:
    import grpc

    from cri.api.v1 import api_pb2 as pb
    from cri.api.v1 import api_pb2_grpc
    channel = grpc.insecure_channel(endpoint)
    rt = api_pb2_grpc.RuntimeServiceStub(channel)
    calls: dict[str, list[float]] = {"RunPodSandbox": [], "CreateContainer": [], "StartContainer": []}
    running: list[float] = []
    pods: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def one(i: int, started: list[float]) -> None:
        meta = pb.PodSandboxMetadata(name=f"burst-{i}", uid=uuid.uuid4().hex, namespace="bench")
        config = pb.PodSandboxConfig(metadata=meta, log_directory=str(logs / f"burst-{i}"),
                                     linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent))
        container = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=image),
                                       command=["sleep", "3600"], log_path="c.log", linux=pb.LinuxContainerConfig())
        go.wait()
        try:
            t0 = time.perf_counter()
            pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=300).pod_sandbox_id
            with lock:
                pods.append(pod)
            t1 = time.perf_counter()
            cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=container,
                                                               sandbox_config=config), timeout=300).container_id
            t2 = time.perf_counter()
            rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=300)
            t3 = time.perf_counter()
        except grpc.RpcError as e:
            with lock:
                failures.append(f"pod {i}: {e.code().name}: {e.details()}")
            return
        with lock:
            calls["RunPodSandbox"].append((t1 - t0) * 1000)
            calls["CreateContainer"].append((t2 - t1) * 1000)
            calls["StartContainer"].append((t3 - t2) * 1000)
            running.append((t3 - started[0]) * 1000)

    started = [0.0]
    threads = [] if sequential else [threading.Thread(target=one, args=(i, started)) for i in range(count)]
    for t in threads:
        t.start()
    began = time.monotonic()  # the burst's window on CLOCK_MONOTONIC, for profiles (burst-profile.sh)
    started[0] = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    if sequential:
        for i in range(count):
            one(i, started)
    wall = (time.perf_counter() - started[0]) * 1000
    ended = time.monotonic()
    for pod in pods:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=300)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=300)
    channel.close()
    if failures:
        raise SystemExit("burst failed: " + "; ".join(failures[:5]))
    out.write_text(json.dumps({"count": count, "sequential": sequential, "wall_ms": wall, "calls": calls,
                                "running_ms": running, "monotonic": [began, ended]}))


def report(results: dict[str, list[dict]]) -> str:
    anchors = [a for a in ANCHORS if a in results]
    pooled = {rt: {"running": [v for r in rs for v in r["running_ms"]], "wall": [r["wall_ms"] for r in rs],
                   **{k: [v for r in rs for v in r["calls"][k]] for k in rs[0]["calls"]}}
              for rt, rs in results.items()}
    count, rounds = results["pycrid"][0]["count"], len(results["pycrid"])
    how = ("one after another" if results["pycrid"][0].get("sequential")
           else f"at once through gRPC ({rounds} rounds, pooled; one thread per pod)")
    lines = [f"### {count} pods started {how}", "",
             *header(anchors)]
    each = {rt: p for rt, p in pooled.items()}
    if results["pycrid"][0].get("sequential"):  # no pod waits for another: each pod's three calls
        lines.append(row("RunPodSandbox + CreateContainer + StartContainer mean, ms",
                         {rt: statistics.mean(map(sum, zip(p["RunPodSandbox"], p["CreateContainer"],
                                                           p["StartContainer"]))) for rt, p in each.items()},
                         anchors, bold=True))
    else:
        lines.append(row("pod create→running p50, ms", {rt: pct(p["running"], 50) for rt, p in each.items()},
                         anchors))
        lines.append(row("pod create→running p99, ms", {rt: pct(p["running"], 99) for rt, p in each.items()},
                         anchors, bold=True, goal=" (goal ≤ 0.3)"))
    for call in ("RunPodSandbox", "CreateContainer"):
        lines.append(row(f"  {call} mean, ms", {rt: statistics.mean(p[call]) for rt, p in each.items()}, anchors))
    lines.append(row("  StartContainer mean, ms", {rt: statistics.mean(p["StartContainer"]) for rt, p in each.items()},
                     anchors, bold=True, goal=" (goal ≤ 0.2)"))
    lines.append(row("whole burst (wall), ms", {rt: statistics.median(p["wall"]) for rt, p in each.items()}, anchors))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("endpoint")
    r.add_argument("out", type=Path)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--image", required=True)
    r.add_argument("--logs", type=Path, required=True)
    r.add_argument("--cgroup-parent", required=True)
    r.add_argument("--sequential", action="store_true")
    rep = sub.add_parser("report")
    rep.add_argument("results", nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        run(args.endpoint, args.out, args.count, args.image, args.logs, args.cgroup_parent, args.sequential)
    else:
        results = {}
        for item in args.results:
            rt, files = item.split("=", 1)
            results[rt] = [json.loads(Path(f).read_text()) for f in files.split(",")]
        print(report(results), end="")


if __name__ == "__main__":
    main()
