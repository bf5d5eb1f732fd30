#!/usr/bin/env bash
# Pod start and stop latency and the runtime's own memory per pod: pycrid, then containerd 1.6 +
# runc and containerd 2.x + runc, in one run on this machine, with the same images from one local
# registry.
#
#   hack/bench/pods.sh [COUNT]     COUNT pods (default 20) per runtime, each one busybox
#                                  `sleep 3600`; prints a markdown section on stdout, progress and
#                                  failures on stderr
#
# Works under $BENCH_WORK/pods; on exit and on Ctrl-C (traps) it removes every daemon, pod, mount,
# cgroup, bridge and image it made, leaving only configs and logs there.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-20}
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [COUNT]"
WORK=$BENCH_WORK/pods

cleanup() {
	for rt in "${RUNTIMES[@]}"; do "$BENCH/$rt.sh" stop "$WORK/$rt" >&2 || true; done
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data" "$WORK/logs"
}

# fail RUNTIME WHAT: the runtime's log tail, then exit (the trap cleans up).
fail() {
	local log=$WORK/$1/$1.log
	echo "pods.sh: $1: $2 failed; last lines of $log:" >&2
	tail -n 30 "$log" >&2
	exit 1
}

# measure RUNTIME: the runtime alone on the machine (the others are not running), images pulled
# first so that pulls do not count.
measure() {
	local rt=$1 dir=$WORK/$1 ref
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	for ref in "registry.k8s.io/$PAUSE_REF" "registry.k8s.io/$BUSYBOX_REF"; do
		crictl --config "$dir/crictl.yaml" pull "$ref" >/dev/null || fail "$rt" "crictl pull $ref"
	done
	echo "pods.sh: $COUNT pods on $rt" >&2
	python3 "$BENCH/bench.py" pods "$rt" "$dir" "$WORK/$rt.json" --count "$COUNT" \
		--image "registry.k8s.io/$BUSYBOX_REF" --logs "$WORK/logs/$rt" --cgroup-parent "${CGROUP_PARENT[$rt]}" ||
		fail "$rt" "the pod benchmark"
	"$BENCH/$rt.sh" stop "$dir" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
cleanup                  # whatever an interrupted earlier run left
rm -f "$WORK"/*.json
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" "$PAUSE_REF" "$BUSYBOX_REF" >&2
for rt in "${RUNTIMES[@]}"; do measure "$rt"; done
results=()
for rt in "${RUNTIMES[@]}"; do results+=("$rt=$WORK/$rt.json"); done
python3 "$BENCH/bench.py" pods-report "${results[@]}"
