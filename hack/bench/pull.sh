#!/usr/bin/env bash
# Cold-cache image pull time: pycrid, containerd 1.6 and containerd 2.x, in one run on this machine,
# pulling the same 5-layer, ~200 MB image of random data from one local registry through `crictl pull`.
#
#   hack/bench/pull.sh [ROUNDS]    ROUNDS pulls (default 3) per runtime, interleaved, each into a
#                                  freshly started daemon with an empty root; prints a markdown
#                                  section on stdout, progress and failures on stderr
#
# The image is built once into $PYCRID_CACHE/bench (random data does not compress, so the
# transfer is the full size). Works under $BENCH_WORK/pull; on exit and on Ctrl-C (traps) it
# removes every daemon, registry and image store it made, leaving only configs and logs there.
# The registry serves from the page cache in every round alike.
# Needs: skopeo, jq, gzip, GNU tar.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${1:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [ROUNDS]"
WORK=$BENCH_WORK/pull
LAYOUT=$PYCRID_CACHE/bench/random-5x40
LAYERS=5
FILES_PER_LAYER=8 # of 5 MiB each: 40 MiB of random data per layer
REPO=pycrid-bench/random
TAG=5x40

# blob FILE MEDIATYPE: move FILE into the layout's blobs; print its descriptor as JSON.
blob() {
	local file=$1 type=$2 digest size
	digest=$(sha256sum "$file" | cut -d' ' -f1)
	size=$(stat -c %s "$file")
	mv "$file" "$NEW/blobs/sha256/$digest"
	jq -nc --arg t "$type" --arg d "sha256:$digest" --argjson s "$size" \
		'{mediaType: $t, digest: $d, size: $s}'
}

# An OCI layout written directly (tar, gzip, jq): nothing in it needs umoci, and the layers are
# plain files, one directory per layer so no layer shadows another.
build_image() {
	[[ -f $LAYOUT/index.json ]] && return 0
	echo "pull.sh: building the benchmark image in $LAYOUT" >&2
	NEW=$LAYOUT.new
	local tmp i f diff_ids=() layers=() config manifest
	rm -rf "$NEW"
	mkdir -p "$NEW/blobs/sha256"
	tmp=$NEW/tmp
	for ((i = 1; i <= LAYERS; i++)); do
		mkdir -p "$tmp/layer$i/data$i"
		for ((f = 1; f <= FILES_PER_LAYER; f++)); do
			head -c 5M /dev/urandom >"$tmp/layer$i/data$i/random$f"
		done
		tar -C "$tmp/layer$i" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
			-cf "$tmp/layer.tar" "data$i"
		diff_ids+=("sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)")
		gzip -1 -n "$tmp/layer.tar"
		layers+=("$(blob "$tmp/layer.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)")
		rm -rf "$tmp/layer$i"
	done
	jq -n --args '{architecture: "amd64", os: "linux", config: {},
		rootfs: {type: "layers", diff_ids: $ARGS.positional}}' "${diff_ids[@]}" >"$tmp/config.json"
	config=$(blob "$tmp/config.json" application/vnd.oci.image.config.v1+json)
	printf '%s\n' "${layers[@]}" | jq -s --argjson c "$config" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: .}' \
		>"$tmp/manifest.json"
	manifest=$(blob "$tmp/manifest.json" application/vnd.oci.image.manifest.v1+json)
	jq -n --argjson m "$manifest" --arg tag "$TAG" \
		'{schemaVersion: 2, manifests: [$m + {annotations: {"org.opencontainers.image.ref.name": $tag}}]}' \
		>"$NEW/index.json"
	echo '{"imageLayoutVersion": "1.0.0"}' >"$NEW/oci-layout"
	rm -rf "$tmp"
	# Swap in the finished layout only, so an interrupted build never looks done.
	rm -rf "$LAYOUT"
	mv "$NEW" "$LAYOUT"
}

# The bytes a pull transfers: config and compressed layers (the manifest is noise).
image_bytes() {
	local manifest
	manifest=$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "$LAYOUT/index.json")
	jq '.config.size + ([.layers[].size] | add)' "$LAYOUT/blobs/sha256/$manifest"
}

cleanup() {
	for rt in "${RUNTIMES[@]}"; do "$BENCH/$rt.sh" stop "$WORK/$rt" >&2 || true; done
	"$HACK/registry.sh" stop "$WORK/registry" >&2 || true
	rm -rf "$WORK/registry/data" "${NEW-}"
}

# fail RUNTIME WHAT: the runtime's log tail, then exit (the trap cleans up).
fail() {
	local log=$WORK/$1/$1.log
	echo "pull.sh: $1: $2 failed; last lines of $log:" >&2
	tail -n 30 "$log" >&2
	exit 1
}

# pull_once RUNTIME ROUND: a daemon with an empty root (stop removed the last one's), one timed
# `crictl pull`, then stop; appends "RUNTIME ROUND SECONDS" to the times file.
pull_once() {
	local rt=$1 dir=$WORK/$1 ref=docker.io/$REPO:$TAG t0 t1
	"$BENCH/$rt.sh" start "$dir" "$PORT" >&2
	t0=$(date +%s%N)
	crictl --config "$dir/crictl.yaml" pull "$ref" >/dev/null || fail "$rt" "crictl pull $ref"
	t1=$(date +%s%N)
	"$BENCH/$rt.sh" stop "$dir" >&2
	awk -v ns=$((t1 - t0)) -v line="$rt $2" 'BEGIN { printf "%s %.3f\n", line, ns / 1e9 }' | tee -a "$WORK/times" >&2
}

trap cleanup EXIT
trap 'exit 130' INT TERM # exit runs the EXIT trap
cleanup                  # whatever an interrupted earlier run left
build_image
rm -f "$WORK/times"
PORT=$(free_port)
"$HACK/registry.sh" start "$WORK/registry" "$PORT" >&2
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$LAYOUT:$TAG" "docker://127.0.0.1:$PORT/$REPO:$TAG"
for ((round = 1; round <= ROUNDS; round++)); do
	# Rotate who goes first, so no runtime always pulls right after the same other one.
	n=${#RUNTIMES[@]}
	for ((i = 0; i < n; i++)); do
		pull_once "${RUNTIMES[(round - 1 + i) % n]}" "$round"
	done
done
python3 "$BENCH/bench.py" pull-report "$WORK/times" "$(image_bytes)"
