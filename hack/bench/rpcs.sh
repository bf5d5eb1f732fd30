#!/usr/bin/env bash
# CRI call latency as critest's own benchmark measures it (`critest -benchmark`: pod, container and
# image lifecycles through the gRPC API, no crictl process per call), pycrid then containerd 1.6 +
# runc and containerd 2.x + runc, in one run on this machine with the same images from one local
# registry.
#
#   hack/bench/rpcs.sh [COUNT [PASSES]]
#       COUNT pods, COUNT containers and COUNT image lifecycles (PullImage, ImageStatus, RemoveImage
#       of critest's small busybox image, cold: no other image is there) per runtime (default 20),
#       one at a time, in PASSES passes (default 2) that each run every runtime with COUNT/PASSES
#       of them, in an order rotated from pass to pass: on a shared machine whose load changes
#       from minute to minute, no runtime gets all of a quiet or a busy spell. Prints a markdown
#       section on stdout, progress on stderr
#
# Works under $BENCH_WORK/rpcs; its traps remove every daemon, pod and image it made.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-20}
PASSES=${2:-2}
[[ $COUNT =~ ^[1-9][0-9]*$ && $PASSES =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [COUNT [PASSES]]"
PER_PASS=$(((COUNT + PASSES - 1) / PASSES))
WORK=$BENCH_WORK/rpcs

cleanup() {
	for rt in "${RUNTIMES[@]}"; do "$BENCH/$rt.sh" stop "$WORK/$rt" >&2 || true; done
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data"
}

# critest_run RUNTIME OUT GINKGO-FLAG: one critest -benchmark run, less the specs the flag skips.
critest_run() {
	local rt=$1 out=$2 select=$3 endpoint
	endpoint=$(awk '/^runtime-endpoint:/ { print $2 }' "$WORK/$rt/crictl.yaml")
	(cd "$WORK" && critest -benchmark "$select" --runtime-endpoint "$endpoint" \
		--image-endpoint "$endpoint" --benchmarking-params-file "$WORK/params.yaml" \
		--benchmarking-output-dir "$out" >>"$WORK/$rt.critest.log" 2>&1) ||
		{ tail -n 30 "$WORK/$rt.critest.log" >&2; die "critest -benchmark $select failed on $rt"; }
}

# measure RUNTIME PASS: the runtime alone on the machine, started afresh; critest writes its JSON
# into WORK/RUNTIME.out.PASS.
measure() {
	local rt=$1 dir=$WORK/$1 out=$WORK/$1.out.$2
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	rm -rf "$out" && mkdir -p "$out"
	echo "rpcs.sh: critest -benchmark on $rt, pass $2 of $PASSES" >&2
	# The image benchmarks first, on an empty store: every PullImage of critest's small busybox
	# image is cold (the RemoveImage before it took its layers too), as no other image shares them.
	critest_run "$rt" "$out" "--ginkgo.skip=$POD_SPECS"
	# Then images pre-pulled, as in pods.sh: otherwise whichever of critest's pod and container
	# benchmarks comes first in its (shuffled) order pays a pull inside one of its timed calls.
	crictl --config "$dir/crictl.yaml" pull "registry.k8s.io/$BUSYBOX_REF" >&2
	crictl --config "$dir/crictl.yaml" pull "registry.k8s.io/$PAUSE_REF" >&2
	critest_run "$rt" "$out" "--ginkgo.skip=$IMAGE_SPECS"
	"$BENCH/$rt.sh" stop "$dir" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
mkdir -p "$WORK"
cleanup # whatever an interrupted earlier run left
# Which benchmarks a critest run skips (-benchmark adds its own focus, so a focus of ours would
# only widen it).
IMAGE_SPECS='\[k8s.io\] Image'
POD_SPECS='\[k8s.io\] (PodSandbox|Container)'
# The image benchmarks' image: critest's own default (busybox from a public host) is not mirrored.
cat >"$WORK/params.yaml" <<EOF
podsNumber: $PER_PASS
podsNumberParallel: 1
containersNumber: $PER_PASS
containersNumberParallel: 1
imagesNumber: $PER_PASS
imagesNumberParallel: 1
imagePullingBenchmarkImage: registry.k8s.io/$BUSYBOX_REF
imageListingBenchmarkImages: [registry.k8s.io/$BUSYBOX_REF]
EOF
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" >&2
rm -rf "$WORK"/*.out.* "$WORK"/*.critest.log
results=()
n=${#RUNTIMES[@]}
for ((pass = 1; pass <= PASSES; pass++)); do
	for ((i = 0; i < n; i++)); do
		rt=${RUNTIMES[(pass - 1 + i) % n]}
		measure "$rt" "$pass"
		results+=("$rt=$WORK/$rt.out.$pass")
	done
done
python3 "$BENCH/bench.py" rpcs-report "${results[@]}"
