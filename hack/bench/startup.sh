#!/usr/bin/env bash
# Pod startup latency as Kubernetes measures its SLO, pycrid side by side with containerd 1.6 + runc
# under the same kubelet, control plane and add-ons: for each runtime a hack/cluster cluster of its
# own (`up --runtime`), ROUNDS rounds of PODS pods created by one `kubectl create` (the busybox image
# pulled by a warm-up pod first), timed from creation to Ready as one watch sees them (p50, p90,
# p99), and the time to delete them all. One cluster at a time, so the two never compete, and
# the rounds alternate between them.
#
#   hack/bench/startup.sh [PODS] [ROUNDS]      defaults 30 and 3; markdown on stdout
#
# Works under $BENCH_WORK/startup; both clusters are removed (down --purge) on exit and on Ctrl-C.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PODS=${1:-30}
ROUNDS=${2:-3}
[[ $PODS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [PODS] [ROUNDS]"
WORK=$BENCH_WORK/startup
RUNTIMES=(containerd pycrid)
# Each runtime's CRI socket in its cluster's dir (tests/cluster/layout.py, runtimes.py).
declare -A ENDPOINT=([containerd]=containerd/containerd.sock [pycrid]=pycrid/run/pycrid.sock)

cleanup() {
	local rt
	for rt in "${RUNTIMES[@]}"; do
		[[ -d $WORK/$rt ]] && PYCRID_CLUSTER_DIR=$WORK/$rt "$HACK/cluster/down" --purge >&2 || true
	done
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
cleanup                  # whatever an interrupted earlier run left
mkdir -p "$WORK"
rm -f "$WORK/pycrid.json" "$WORK/containerd.json"
# Round by round, the runtimes' order swapped each round, each alone on the machine while it is
# measured: on a shared machine a busy spell then lands on both, not on one runtime's rounds.
for ((round = 1; round <= ROUNDS; round++)); do
	order=("${RUNTIMES[@]}")
	((round % 2)) || order=("${RUNTIMES[1]}" "${RUNTIMES[0]}")
	for rt in "${order[@]}"; do
		export PYCRID_CLUSTER_DIR=$WORK/$rt
		"$HACK/cluster/up" --runtime "$rt" >&2
		echo "startup.sh: round $round of $ROUNDS, $PODS pods on $rt" >&2
		python3 "$BENCH/startup.py" measure "$rt" "$WORK/$rt.json" --pods "$PODS" --round "$round" \
			--endpoint "unix://$WORK/$rt/${ENDPOINT[$rt]}"
		"$HACK/cluster/down" >&2 # the state dir stays: the next round's up is quick
	done
done
unset PYCRID_CLUSTER_DIR
python3 "$BENCH/startup.py" report "$WORK/pycrid.json" "$WORK/containerd.json"
