#!/usr/bin/env bash
# Page faults per pod on pycrid, by process: COUNT pods started at once through gRPC (burst.py),
# then stopped and removed, under `perf record -e page-faults` (every fault recorded), counted by
# the faulting process's name, for the start (burst.py's window) and for the rest. pycrid's processes have names of their own (pycrid-monitor, -start,
# -pause, -forkserv); python is the agent. Most of a forked Python child's faults are copy-on-write
# copies of the fork server's pages that its reference counts write to.
#
#   hack/bench/pagefaults.sh [COUNT]     COUNT pods (default 10); needs perf; markdown on stdout
#
# Works under $BENCH_WORK/pagefaults; on exit and on Ctrl-C it removes every daemon, pod and image
# it made.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-10}
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [COUNT]"
command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"
WORK=$BENCH_WORK/pagefaults
PYTHON=$PYCRID_CACHE/venv/bin/python

cleanup() {
	stop_perf
	stop_pycrid_with_images "$WORK"
}

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK"
cleanup
rm -f "$WORK/pycrid/pycrid.log" "$WORK/faults.data" "$WORK/burst.json"
pycrid_with_images "$WORK"
start_perf -e page-faults -c 1 -o "$WORK/faults.data"
echo "pagefaults.sh: $COUNT pods at once on pycrid, every page fault recorded" >&2
(cd "$TOP" && "$PYTHON" "$BENCH/burst.py" run "unix://$WORK/pycrid/run/pycrid.sock" "$WORK/burst.json" \
	--count "$COUNT" --image "registry.k8s.io/$BUSYBOX_REF" --logs "$WORK/logs" \
	--cgroup-parent "${CGROUP_PARENT[pycrid]}") >&2
stop_perf
read -r began ended < <(python3 -c 'import json, sys; print(*json.load(open(sys.argv[1]))["monotonic"])' "$WORK/burst.json")
echo "### Page faults per pod on pycrid ($COUNT pods started at once, then stopped and removed one by one)"
echo
echo "| process | while starting | while stopping and removing |"
echo "|---|---:|---:|"
perf script -i "$WORK/faults.data" -F comm,time 2>/dev/null | python3 -c '
import collections, sys
lo, hi, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
start, rest = collections.Counter(), collections.Counter()
for line in sys.stdin:
    *comm, when = line.split()
    (start if lo <= float(when.rstrip(":")) <= hi else rest)[" ".join(comm)] += 1
for comm in sorted(start.keys() | rest.keys(), key=lambda c: -(start[c] + rest[c]))[:10]:
    print(f"| {comm} | {start[comm] / n:.0f} | {rest[comm] / n:.0f} |")
' "$began" "$ended" "$COUNT"
