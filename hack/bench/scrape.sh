#!/usr/bin/env bash
# Scrape cost of pycrid's /metrics against the number of running containers (containerd has no
# such endpoint of its own: the kubelet's cAdvisor serves these families for it).
#
#   hack/bench/scrape.sh [COUNTS...]     default: 10 100 containers, one busybox `sleep` per pod
#
# Each pod has a cgroup_parent of its own (the pod cgroup the kubelet would make, read for the
# pod's series). For each count the node grows to that many running containers, settles for a few
# seconds, and 15 scrapes of /metrics are timed (as Prometheus makes them, to the last byte);
# prints a markdown section with their medians and minimums and the slope in ms per container
# between the smallest and the largest count (goal: <= 0.25 ms). Works under $BENCH_WORK/scrape;
# its traps remove every daemon, pod and image it made, also on Ctrl-C.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNTS=("${@:-10}")
(($#)) || COUNTS=(10 100)
WORK=$BENCH_WORK/scrape

cleanup() {
	"$BENCH/pycrid.sh" stop "$WORK/pycrid" >&2 || true
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data" "$WORK/logs"
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
mkdir -p "$WORK"
cleanup # whatever an interrupted earlier run left
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
"$HACK/images.sh" push "127.0.0.1:$PORT" "$PAUSE_REF" "$BUSYBOX_REF" >&2
METRICS=127.0.0.1:$(free_port)
PYCRID_METRICS_ADDRESS=$METRICS "$BENCH/pycrid.sh" start "$WORK/pycrid" "$PORT" >&2
for ref in "registry.k8s.io/$PAUSE_REF" "registry.k8s.io/$BUSYBOX_REF"; do
	crictl --config "$WORK/pycrid/crictl.yaml" pull "$ref" >/dev/null
done
python3 "$BENCH/bench.py" scrape "$WORK/pycrid" "http://$METRICS/metrics" "${COUNTS[@]}" \
	--image "registry.k8s.io/$BUSYBOX_REF" --logs "$WORK/logs" --cgroup-parent "${CGROUP_PARENT[pycrid]}"
