#!/usr/bin/env bash
# COUNT pods started at once through the CRI's gRPC API (one thread per pod, as a kubelet given
# COUNT pods starts them: RunPodSandbox, CreateContainer, StartContainer), on pycrid, containerd 1.6
# + runc and containerd 2.x + runc, in ROUNDS rounds whose runtime order rotates, with the same
# images from one local registry: each pod's create→running latency, each call's, the whole burst's.
#
#   hack/bench/burst.sh [COUNT [ROUNDS]]   COUNT pods (default 30), ROUNDS rounds (default 2);
#                                          prints a markdown section on stdout, progress on stderr
#
# Works under $BENCH_WORK/burst; on exit and on Ctrl-C it removes every daemon, pod and image it made.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${1:-30}
ROUNDS=${2:-2}
[[ $COUNT =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [COUNT [ROUNDS]]"
WORK=$BENCH_WORK/burst
PYTHON=$PYCRID_CACHE/venv/bin/python

cleanup() {
	for rt in "${RUNTIMES[@]}"; do "$BENCH/$rt.sh" stop "$WORK/$rt" >&2 || true; done
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data"
}

# measure RUNTIME ROUND: the runtime alone on the machine, started afresh, images pulled first.
measure() {
	local rt=$1 dir=$WORK/$1 ref endpoint
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	for ref in "registry.k8s.io/$PAUSE_REF" "registry.k8s.io/$BUSYBOX_REF"; do
		crictl --config "$dir/crictl.yaml" pull "$ref" >/dev/null
	done
	endpoint=$(awk '/^runtime-endpoint:/ { print $2 }' "$dir/crictl.yaml")
	echo "burst.sh: $COUNT pods at once on $rt, round $2 of $ROUNDS" >&2
	(cd "$TOP" && "$PYTHON" "$BENCH/burst.py" run "$endpoint" "$WORK/$rt.$2.json" --count "$COUNT" \
		--image "registry.k8s.io/$BUSYBOX_REF" --logs "$WORK/logs" --cgroup-parent "${CGROUP_PARENT[$rt]}")
	"$BENCH/$rt.sh" stop "$dir" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK"
cleanup
rm -f "$WORK"/*.json
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" "$PAUSE_REF" "$BUSYBOX_REF" >&2
declare -A files
n=${#RUNTIMES[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	for ((i = 0; i < n; i++)); do
		rt=${RUNTIMES[(round - 1 + i) % n]}
		measure "$rt" "$round"
		files[$rt]+="${files[$rt]:+,}$WORK/$rt.$round.json"
	done
done
(cd "$TOP" && "$PYTHON" "$BENCH/burst.py" report "pycrid=${files[pycrid]}" "containerd=${files[containerd]}" \
	"containerd2=${files[containerd2]}")
