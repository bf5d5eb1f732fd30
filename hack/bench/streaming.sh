#!/usr/bin/env bash
# Exec round trip and port-forward throughput: pycrid, then containerd 1.6 + runc and containerd 2.x
# + runc, in one run on this machine, with the same image from one local registry.
#
#   hack/bench/streaming.sh [ROUNDS [MEGABYTES]]   ROUNDS execs (default 30), MEGABYTES read through
#                                                   each port-forward (default 500); prints a
#                                                   markdown section on stdout, progress on stderr
#
# Works under $BENCH_WORK/streaming; on exit and on Ctrl-C it removes every daemon, pod and image it
# made.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${1:-30}
MEGABYTES=${2:-500}
WORK=$BENCH_WORK/streaming

cleanup() {
	for rt in "${RUNTIMES[@]}"; do "$BENCH/$rt.sh" stop "$WORK/$rt" >&2 || true; done
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data"
}

# measure RUNTIME: the runtime alone on the machine, images pulled first.
measure() {
	local rt=$1 dir=$WORK/$1 ref
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	for ref in "registry.k8s.io/$PAUSE_REF" "registry.k8s.io/$BUSYBOX_REF"; do
		crictl --config "$dir/crictl.yaml" pull "$ref" >/dev/null
	done
	echo "streaming.sh: $ROUNDS execs and 3 port-forwards of $MEGABYTES MB on $rt" >&2
	python3 "$BENCH/streaming.py" measure "$rt" "$dir" "$WORK/$rt.json" --rounds "$ROUNDS" \
		--megabytes "$MEGABYTES" --cgroup-parent "${CGROUP_PARENT[$rt]}"
	"$BENCH/$rt.sh" stop "$dir" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup
rm -f "$WORK"/*.json
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" "$PAUSE_REF" "$BUSYBOX_REF" >&2
for rt in "${RUNTIMES[@]}"; do measure "$rt"; done
results=()
for rt in "${RUNTIMES[@]}"; do results+=("$WORK/$rt.json"); done
python3 "$BENCH/streaming.py" report "${results[@]}"
