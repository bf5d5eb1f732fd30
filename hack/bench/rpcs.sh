#!/usr/bin/env bash
# CRI call latency as critest's own benchmark measures it (`critest -benchmark`: pod and container
# lifecycles through the gRPC API, no crictl process per call), pycrid then containerd 1.6 + runc,
# in one run on this machine with the same images from one local registry.
#
#   hack/bench/rpcs.sh [COUNT]     COUNT pods and COUNT containers (default 20), one at a time;
#                                  prints a markdown section on stdout, progress on stderr
#
# Works under $BENCH_WORK/rpcs; its traps remove every daemon, pod and image it made.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-20}
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [COUNT]"
WORK=$BENCH_WORK/rpcs

cleanup() {
	"$BENCH/pycrid.sh" stop "$WORK/pycrid" >&2 || true
	"$BENCH/containerd.sh" stop "$WORK/containerd" >&2 || true
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data"
}

# measure RUNTIME: the runtime alone on the machine; critest writes its JSON into WORK/RUNTIME.out.
measure() {
	local rt=$1 dir=$WORK/$1 out=$WORK/$1.out endpoint
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	endpoint=$(awk '/^runtime-endpoint:/ { print $2 }' "$dir/crictl.yaml")
	# Images pre-pulled, as in pods.sh: otherwise whichever of critest's benchmarks comes first in
	# its (shuffled) order pays a pull inside one of its timed calls.
	crictl --config "$dir/crictl.yaml" pull "registry.k8s.io/$BUSYBOX_REF" >&2
	crictl --config "$dir/crictl.yaml" pull "registry.k8s.io/$PAUSE_REF" >&2
	rm -rf "$out" && mkdir -p "$out"
	echo "rpcs.sh: critest -benchmark on $rt" >&2
	(cd "$WORK" && critest -benchmark --runtime-endpoint "$endpoint" \
		--image-endpoint "$endpoint" --benchmarking-params-file "$WORK/params.yaml" \
		--benchmarking-output-dir "$out" >"$WORK/$rt.critest.log" 2>&1) ||
		{ tail -n 30 "$WORK/$rt.critest.log" >&2; die "critest -benchmark failed on $rt"; }
	"$BENCH/$rt.sh" stop "$dir" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
mkdir -p "$WORK"
cleanup # whatever an interrupted earlier run left
printf 'podsNumber: %s\npodsNumberParallel: 1\ncontainersNumber: %s\ncontainersNumberParallel: 1\n' \
	"$COUNT" "$COUNT" >"$WORK/params.yaml"
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" >&2
measure pycrid
measure containerd
python3 "$BENCH/bench.py" rpcs-report "$WORK/pycrid.out" "$WORK/containerd.out"
