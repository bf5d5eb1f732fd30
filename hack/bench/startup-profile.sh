#!/usr/bin/env bash
# Where the CPU goes while a kubelet starts PODS pods at once on one runtime: one round of
# startup.sh's measurement on a hack/cluster cluster of that runtime, under a system-wide
# `perf record`, split by process and by what the kernel was doing (cpusplit.py) over the round's
# window (the first pod's creation to the last one's Ready). The kubelet, the control plane and
# the runtime share the machine's CPUs: this shows how much of them the runtime had.
#
#   hack/bench/startup-profile.sh [RUNTIME] [PODS]   pycrid (default), containerd or containerd2;
#                                                   PODS default 30; needs perf; markdown on stdout
#
# STARTUP_KUBELET_GATES as for startup.sh. Works under $BENCH_WORK/startup-profile; the cluster
# is removed (down --purge) on exit and on Ctrl-C.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RT=${1:-pycrid}
PODS=${2:-30}
[[ $RT =~ ^(pycrid|containerd|containerd2)$ && $PODS =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [RUNTIME] [PODS]"
command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"
WORK=$BENCH_WORK/startup-profile
export PYCRID_CLUSTER_DIR=$WORK/$RT

cleanup() {
	stop_perf
	[[ -d $PYCRID_CLUSTER_DIR ]] && "$HACK/cluster/down" --purge >&2 || true
}

trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup
mkdir -p "$WORK"
rm -f "$WORK/perf.data" "$WORK/round.json"
"$HACK/cluster/up" --runtime "$RT" --kubelet-feature-gates "${STARTUP_KUBELET_GATES:-}" >&2
start_perf -g -o "$WORK/perf.data"
echo "startup-profile.sh: $PODS pods at once on $RT, under perf" >&2
python3 "$BENCH/startup.py" measure "$RT" "$WORK/round.json" --pods "$PODS"
stop_perf
read -r began ended < <(python3 -c 'import json, sys; print(*json.load(open(sys.argv[1]))["rounds"][-1]["window"])' \
	"$WORK/round.json")
python3 "$BENCH/startup.py" report "$WORK/round.json"
echo
echo "#### CPU from the first pod's creation to the last one's Ready on $RT ($(uname -r), $(nproc) CPUs)"
echo
perf script -i "$WORK/perf.data" -F comm,time,ip,sym 2>/dev/null | python3 "$BENCH/cpusplit.py" "$began" "$ended"
