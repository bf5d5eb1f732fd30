#!/usr/bin/env bash
# Scrape cost of pycrid's /metrics against the number of running containers.
#
#   [PER_POD=N] hack/bench-scrape.sh [COUNTS...]      default: 10 50 100 containers, 1 per pod
#
# Starts a throwaway registry (hack/registry.sh) with busybox and pause, and a pycrid of its own
# (tests/e2e/daemon.py) with metrics on a free loopback port. For each count it grows the node
# to that many running busybox `sleep` containers, PER_POD to a pod, each pod under a
# cgroup_parent of its own (the pod cgroup the kubelet would make, read for the pod's series),
# then lets the node settle for a few seconds, times 15 scrapes of /metrics and prints their
# median and minimum, and finally the least-squares slopes in ms per container of the medians and
# of the minimums (the minimum is the cost with the least interference from whatever else the
# machine runs: on these VMs a fixed CPU loop varies by +-20% from second to second; goal:
# <= 0.5 ms). Every pod,
# process, cgroup, bridge and temporary directory it made is removed on exit.
# Needs root, the dev venv (hack/install.sh) and the test images (hack/images.sh build).
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/env.sh
source "$HACK/env.sh"
PYTHON=$PYCRID_CACHE/venv/bin/python
[[ $(id -u) -eq 0 ]] || { echo "bench-scrape.sh: needs root" >&2; exit 1; }
[[ -x $PYTHON ]] || { echo "bench-scrape.sh: missing $PYTHON; run hack/install.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pycrid-bench-scrape.XXXXXX)
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
	"$HACK/registry.sh" stop "$WORK/registry" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

"$HACK/registry.sh" start "$WORK/registry" "$PORT" >/dev/null
"$HACK/images.sh" push "127.0.0.1:$PORT" library/busybox:1 pause:3.10 >/dev/null

cd "$HACK/.."
PATH=$PYCRID_CACHE/bin:$PATH "$PYTHON" - "$WORK" "127.0.0.1:$PORT" "${PER_POD:-1}" "${@:-10 50 100}" <<'EOF'
import gzip
import secrets
import socket
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import grpc

from cri.api.v1 import api_pb2 as pb
from cri.api.v1 import api_pb2_grpc as pb_grpc
from tests.e2e import leaks
from tests.e2e.daemon import start

work, registry, per_pod = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
counts = sorted({int(n) for arg in sys.argv[4:] for n in arg.split()})
SCRAPES = 15
SETTLE_S = 3
PARENT = f"/pycrid-bench-scrape-{secrets.token_hex(3)}"

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    metrics_port = s.getsockname()[1]
daemon = start(work / "pycrid", registry, metrics_address=f"127.0.0.1:{metrics_port}")
url = f"http://127.0.0.1:{metrics_port}/metrics"


def scrape() -> tuple[float, int]:
    """One scrape as Prometheus makes it (gzip accepted; pycrid answers loopback plainly), timed to
    the last byte."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as r:
        body = r.read()
        gzipped = r.headers["Content-Encoding"] == "gzip"
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, (gzip.decompress(body) if gzipped else body).count(b"\n")


def remove_cgroups() -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / PARENT.lstrip("/")
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                d.rmdir()
            top.rmdir()


try:
    channel = grpc.insecure_channel(daemon.endpoint)
    runtime, images = pb_grpc.RuntimeServiceStub(channel), pb_grpc.ImageServiceStub(channel)
    images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="busybox:1")))
    running, results, pod, pod_id = 0, [], None, ""
    for count in counts:
        while running < count:
            if running % per_pod == 0:
                name = f"bench-{running // per_pod}"
                pod = pb.PodSandboxConfig(
                    metadata=pb.PodSandboxMetadata(name=name, namespace="bench", uid=f"uid-{name}"),
                    log_directory=str(work / "logs" / name),
                    linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"{PARENT}/pod{running // per_pod}"))
                pod_id = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
            ctr = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"sleep-{running % per_pod}"),
                                     image=pb.ImageSpec(image="busybox:1"), command=["sleep", "3600"])
            cid = runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ctr,
                                                                    sandbox_config=pod)).container_id
            runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
            running += 1
        time.sleep(SETTLE_S)  # what follows a burst of starts (kernel RCU and cgroup work) passes
        scrape()  # warm: device names, imports, files held open
        samples = [scrape() for _ in range(SCRAPES)]
        median = statistics.median(ms for ms, _ in samples)
        results.append((count, median, min(ms for ms, _ in samples)))
        print(f"{count:4d} containers ({-(-count // per_pod)} pods): scrape median {median:7.1f} ms over {SCRAPES} "
              f"(min {min(ms for ms, _ in samples):.1f}, max {max(ms for ms, _ in samples):.1f}), "
              f"{samples[0][1]} lines", flush=True)
    if len(results) > 1:
        xs = [c for c, _, _ in results]
        mx = statistics.fmean(xs)
        for label, ys in (("medians", [m for _, m, _ in results]), ("minimums", [m for _, _, m in results])):
            my = statistics.fmean(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            print(f"slope of the {label}: {slope:.3f} ms per container (goal <= 0.5), "
                  f"intercept {my - slope * mx:.1f} ms")
finally:
    left, _ = leaks.remove_everything(daemon)
    remove_cgroups()
    if not left.empty():
        print(f"left behind: {left}", file=sys.stderr)
        sys.exit(1)
EOF
