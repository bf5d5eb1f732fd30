"""Streaming benchmarks for hack/bench/streaming.sh (stdlib only): the exec round trip as a user
sees it (`crictl exec CTR true`, the streaming path, not -s) and port-forward throughput (bytes
read through `crictl port-forward` from a server in the pod).

    streaming.py measure RUNTIME DIR OUT.json --rounds N --megabytes M
        DIR holds the crictl.yaml of the runtime hack/bench/RUNTIME.sh started; runs one pod with
        an idle container and a TCP server on port 8080 that sends zeros to whoever connects
    streaming.py report DIR/pycrid.json DIR/containerd.json DIR/containerd2.json   (RUNTIME.json each)
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.29-2"


def crictl(config: Path, *args: str) -> str:
    done = subprocess.run(["crictl", "--config", str(config), *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"crictl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def timed(config: Path, *args: str) -> float:
    started = time.perf_counter()
    crictl(config, *args)
    return (time.perf_counter() - started) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(path: Path, doc: dict[str, object]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def measure(runtime: str, directory: Path, out: Path, rounds: int, megabytes: int, cgroup_parent: str) -> None:
    config = directory / "crictl.yaml"
    work = directory / "streaming"
    work.mkdir(exist_ok=True)
    pod = crictl(config, "runp", write(work / "pod.json", {
        "metadata": {"name": "stream-bench", "namespace": "bench", "uid": f"stream-{runtime}"},
        "log_directory": str(work / "logs"), "linux": {"cgroup_parent": cgroup_parent}}))
    try:
        idle = crictl(config, "create", pod, write(work / "idle.json", {
            "metadata": {"name": "idle"}, "image": {"image": IMAGE}, "command": ["sleep", "3600"],
            "log_path": "idle.log", "linux": {}}), str(work / "pod.json"))
        crictl(config, "start", idle)
        server = crictl(config, "create", pod, write(work / "server.json", {
            "metadata": {"name": "zeros"}, "image": {"image": IMAGE},
            "command": ["sh", "-c", "while true; do nc -l -p 8080 < /dev/zero; done"],
            "log_path": "zeros.log", "linux": {}}), str(work / "pod.json"))
        crictl(config, "start", server)
        timed(config, "exec", idle, "true")  # warm: the first of anything pays one-off costs
        version = [timed(config, "version") for _ in range(rounds)]
        execs = [timed(config, "exec", idle, "true") for _ in range(rounds)]
        throughput = [forward(config, pod, megabytes) for _ in range(3)]
    finally:
        crictl(config, "rmp", "--force", pod)
    out.write_text(json.dumps({"runtime": runtime, "version_ms": version, "exec_ms": execs,
                               "forward_mb_s": throughput, "megabytes": megabytes}))


def forward(config: Path, pod: str, megabytes: int) -> float:
    """MB/s of one connection through `crictl port-forward` reading ``megabytes``."""
    local = free_port()
    forwarder = subprocess.Popen(["crictl", "--config", str(config), "port-forward", pod, f"{local}:8080"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                conn = socket.create_connection(("127.0.0.1", local), timeout=30)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("crictl port-forward never listened")
        want, got = megabytes * 1_000_000, 0
        buffer = bytearray(1 << 20)
        with conn:
            started = time.perf_counter()
            while got < want:
                n = conn.recv_into(buffer)
                if not n:
                    sys.exit(f"the port-forward ended after {got} bytes")
                got += n
            seconds = time.perf_counter() - started
        return got / seconds / 1e6
    finally:
        forwarder.terminate()
        forwarder.wait(10)


ANCHORS = {"containerd": "containerd 1.6", "containerd2": "containerd 2.x"}


def report(paths: list[Path]) -> None:
    """``paths``: RUNTIME.json each, pycrid's first; a column per runtime, a ratio per anchor."""
    results = {path.stem: json.loads(path.read_text()) for path in paths}
    anchors = [rt for rt in results if rt != "pycrid"]

    def med(r: dict[str, list[float]], key: str) -> float:
        return statistics.median(r[key])

    def row(name: str, f, unit: str, digits: int = 1) -> str:  # type: ignore[no-untyped-def]
        values = {rt: f(r) for rt, r in results.items()}
        cells = [name, *(f"{v:.{digits}f} {unit}" for v in values.values()),
                 *(f"{values['pycrid'] / values[a]:.2f}×" for a in anchors)]
        return "| " + " | ".join(cells) + " |"

    names = [ANCHORS[a] for a in anchors]
    p = results["pycrid"]
    lines = ["## Streaming: exec round trip and port-forward throughput", "",
             f"{len(p['exec_ms'])} `crictl exec CTR true` (the streaming path) after one warm-up, medians; "
             f"`crictl version` is crictl's own start-up, the same for all. Port-forward: one connection "
             f"through `crictl port-forward` reading {p['megabytes']} MB from `nc` in the pod, median of 3.",
             "", "| measure | pycrid | " + " | ".join(names) + " | "
             + " | ".join(f"pycrid / {n}" for n in names) + " |",
             "|---|" + "---|" * (1 + 2 * len(anchors)),
             row("exec round trip", lambda r: med(r, "exec_ms"), "ms"),
             row("exec round trip minus crictl start-up", lambda r: med(r, "exec_ms") - med(r, "version_ms"), "ms"),
             row("port-forward throughput", lambda r: med(r, "forward_mb_s"), "MB/s", 0)]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("runtime")
    m.add_argument("dir", type=Path)
    m.add_argument("out", type=Path)
    m.add_argument("--rounds", type=int, default=30)
    m.add_argument("--megabytes", type=int, default=500)
    m.add_argument("--cgroup-parent", default="")
    r = sub.add_parser("report")
    r.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.runtime, args.dir, args.out, args.rounds, args.megabytes, args.cgroup_parent)
    else:
        report(args.results)


if __name__ == "__main__":
    main()
