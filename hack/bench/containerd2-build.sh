#!/usr/bin/env bash
# Builds the benchmarks' second anchor, containerd 2.x + runc, from the Go module proxy into
# $PYCRID_CACHE/containerd2/VERSION/bin (containerd, containerd-shim-runc-v2, runc), and prints
# that directory. hack/bench/containerd.sh runs it before it starts containerd 2.x, so the first
# bench run builds it (a few minutes on 2 cores) and every later one finds it at once; the tests
# and CI never need it.
#
#   hack/bench/containerd2-build.sh     (versions: CONTAINERD2_VERSION and RUNC2_VERSION in lib.sh)
#
# containerd and its shim are built without cgo (as containerd's own release builds the shim; the
# btrfs snapshotter, the only cgo part of containerd, goes with it and the bench uses overlayfs).
# runc needs cgo and Debian's libseccomp-dev (installed here when missing) for its seccomp
# support; it is built with runc's own default tags less libpathrs, a Rust library Debian 12 lacks
# (runc then uses its Go path-resolution code).
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

containerd_version=$CONTAINERD2_VERSION
runc_version=$RUNC2_VERSION
base="$PYCRID_CACHE/containerd2/$containerd_version"
bin="$base/bin"
stamp="$bin/.built-runc-$runc_version"
if [[ -f $stamp && -x $bin/containerd && -x $bin/containerd-shim-runc-v2 && -x $bin/runc ]]; then
	echo "$bin"
	exit 0
fi

if ! dpkg-query -W -f='${Status}' libseccomp-dev 2>/dev/null | grep -q "ok installed"; then
	echo "containerd2-build: apt packages: libseccomp-dev" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libseccomp-dev pkg-config gcc libc6-dev >/dev/null
fi

gobin=$(pycrid_go)
export GOMODCACHE="$PYCRID_CACHE/go/mod" GOCACHE="$PYCRID_CACHE/go/build"
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$bin"

# module DIR PATH VERSION PACKAGE...: a throwaway module (kept for its go.sum) that requires
# PATH@VERSION and imports PACKAGE..., as hack/kube/build.sh builds Kubernetes.
module() {
	local mod=$1 path=$2 version=$3 pkg
	shift 3
	mkdir -p "$mod"
	[[ -f $mod/go.sum ]] && return 0
	printf 'module pycrid.local/%s\n\ngo 1.26.0\n\nrequire %s %s\n' "$(basename "$mod")" "$path" "$version" >"$mod/go.mod"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
		printf ')\n'
	} >"$mod/tools.go"
	(cd "$mod" && "$gobin" mod tidy >&2)
}

# build MODDIR NAME PACKAGE GOBUILDFLAGS...: into a temporary file first, so an interrupted build
# never leaves half a binary in bin/.
build() {
	local mod=$1 name=$2 pkg=$3 out
	shift 3
	out=$(mktemp "$bin/.build.XXXXXX")
	(cd "$mod" && "$gobin" build -trimpath "$@" -o "$out" "$pkg")
	mv "$out" "$bin/$name"
}

echo "containerd2-build: containerd $containerd_version and runc $runc_version with $($gobin version)" >&2
cpkg=github.com/containerd/containerd/v2
module "$base/src/containerd" "$cpkg" "$containerd_version" "$cpkg/cmd/containerd" "$cpkg/cmd/containerd-shim-runc-v2"
ldflags="-s -w -X $cpkg/version.Version=$containerd_version -X $cpkg/version.Package=github.com/containerd/containerd"
for name in containerd containerd-shim-runc-v2; do
	CGO_ENABLED=0 build "$base/src/containerd" "$name" "$cpkg/cmd/$name" -ldflags "$ldflags"
done

rpkg=github.com/opencontainers/runc
module "$base/src/runc" "$rpkg" "$runc_version" "$rpkg"
CGO_ENABLED=1 build "$base/src/runc" runc "$rpkg" -tags "seccomp urfave_cli_no_docs" \
	-ldflags "-s -w -X main.gitCommit=$runc_version"

touch "$stamp"
"$bin/containerd" --version >&2
"$bin/runc" --version | head -n 1 >&2
echo "$bin"
