#!/usr/bin/env bash
# Where the time of a burst of pods goes on pycrid: COUNT pods started at once through gRPC (as
# burst.sh does), with PYCRID_TRACE=1 and a system-wide `perf record -g` around it. Prints a
# markdown section: the burst's figures, the CPU of the burst's window split by process and by
# what the kernel was doing (cpusplit.py), and each phase of RunPodSandbox and StartContainer
# (tracephases.py, from the agent's trace lines).
#
#   hack/bench/burst-profile.sh [COUNT [sequential]]
#       COUNT pods (default 30), at once or, with `sequential`, one after another (where a single
#       pod's RunPodSandbox, CreateContainer and StartContainer spend their time); needs perf
#
# Works under $BENCH_WORK/burst-profile; on exit and on Ctrl-C it removes every daemon, pod and
# image it made. pycrid only: the anchors have no trace of their own.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-30}
MODE=${2:-}
[[ $COUNT =~ ^[1-9][0-9]*$ && $MODE =~ ^(sequential)?$ ]] || die "usage: $0 [COUNT [sequential]]"
command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"
WORK=$BENCH_WORK/burst-profile
PYTHON=$PYCRID_CACHE/venv/bin/python

cleanup() {
	stop_perf
	stop_pycrid_with_images "$WORK"
}

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK"
cleanup
rm -f "$WORK/pycrid/pycrid.log" "$WORK/perf.data" "$WORK/burst.json"
PYCRID_TRACE=1 pycrid_with_images "$WORK"
start_perf -g -o "$WORK/perf.data"
echo "burst-profile.sh: $COUNT pods ${MODE:-at once} on pycrid, under perf" >&2
(cd "$TOP" && "$PYTHON" "$BENCH/burst.py" run "unix://$WORK/pycrid/run/pycrid.sock" "$WORK/burst.json" \
	--count "$COUNT" --image "registry.k8s.io/$BUSYBOX_REF" --logs "$WORK/logs" \
	--cgroup-parent "${CGROUP_PARENT[pycrid]}" ${MODE:+--sequential})
stop_perf
read -r began ended < <(python3 -c 'import json, sys; print(*json.load(open(sys.argv[1]))["monotonic"])' "$WORK/burst.json")
(cd "$TOP" && "$PYTHON" "$BENCH/burst.py" report "pycrid=$WORK/burst.json")
echo
echo "#### CPU from the burst's start until its last container ran ($(uname -r), $(nproc) CPUs)"
echo
perf script -i "$WORK/perf.data" -F comm,time,ip,sym 2>/dev/null | python3 "$BENCH/cpusplit.py" "$began" "$ended"
echo
python3 "$BENCH/tracephases.py" "$WORK/pycrid/pycrid.log" RunPodSandbox CreateContainer StartContainer
