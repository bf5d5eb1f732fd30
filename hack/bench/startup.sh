#!/usr/bin/env bash
# Pod startup latency as Kubernetes measures its SLO, pycrid side by side with containerd 1.6 + runc
# and containerd 2.x + runc under the same kubelet, control plane and add-ons: for each runtime a
# hack/cluster cluster of its own (`up --runtime`), ROUNDS rounds of PODS pods created by one
# `kubectl create` (the busybox image pulled by a warm-up pod first), timed from creation to Ready
# as one watch sees them (p50, p90, p99), and the time to delete them all. One cluster at a time,
# so no two compete, and the runtimes' order rotates from round to round.
#
#   hack/bench/startup.sh [PODS] [ROUNDS]      defaults 30 and 3; markdown on stdout
#
# STARTUP_KUBELET_GATES=NAME=BOOL,... runs every kubelet with those feature gates (the same for
# all runtimes; e.g. EventedPLEG=true, which the runtimes that send CRI container events use).
# Works under $BENCH_WORK/startup; every cluster is removed (down --purge) on exit and on Ctrl-C.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PODS=${1:-30}
ROUNDS=${2:-3}
[[ $PODS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [PODS] [ROUNDS]"
WORK=$BENCH_WORK/startup
RUNTIMES=(pycrid containerd containerd2)
# Each runtime's CRI socket in its cluster's dir (tests/cluster/layout.py, runtimes.py).
declare -A ENDPOINT=([containerd]=containerd/containerd.sock [containerd2]=containerd2/containerd.sock
	[pycrid]=pycrid/run/pycrid.sock)
GATES=${STARTUP_KUBELET_GATES:-}

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
for rt in "${RUNTIMES[@]}"; do rm -f "$WORK/$rt.json"; done
# Round by round, the runtimes' order rotated each round, each alone on the machine while it is
# measured: on a shared machine a busy spell then lands on all, not on one runtime's rounds.
n=${#RUNTIMES[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	order=()
	for ((i = 0; i < n; i++)); do order+=("${RUNTIMES[(i + round - 1) % n]}"); done
	for rt in "${order[@]}"; do
		export PYCRID_CLUSTER_DIR=$WORK/$rt
		"$HACK/cluster/up" --runtime "$rt" --kubelet-feature-gates "$GATES" >&2
		echo "startup.sh: round $round of $ROUNDS, $PODS pods on $rt" >&2
		python3 "$BENCH/startup.py" measure "$rt" "$WORK/$rt.json" --pods "$PODS" --round "$round" \
			--endpoint "unix://$WORK/$rt/${ENDPOINT[$rt]}"
		"$HACK/cluster/down" >&2 # the state dir stays: the next round's up is quick
	done
done
unset PYCRID_CLUSTER_DIR
runs=()
for rt in "${RUNTIMES[@]}"; do runs+=("$WORK/$rt.json"); done
python3 "$BENCH/startup.py" report "${runs[@]}"
