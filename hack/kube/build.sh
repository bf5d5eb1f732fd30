#!/usr/bin/env bash
# Builds Kubernetes v1.36.3 (kubelet, kube-apiserver, kube-controller-manager, kube-scheduler,
# kube-proxy, kubectl) and etcd + etcdctl v3.6.8 from the Go module proxy into
# $PYCRID_CACHE/kube/v1.36.3/bin, for the tests that drive pycrid with a real kubelet, and
# streamclient (hack/kube/streamclient: client-go's exec, attach and port-forward clients) with the
# release's own client-go; and what hack/cluster adds: CoreDNS v1.14.2 (the version kubeadm 1.36
# deploys) and metrics-server v0.8.1, which hack/images.sh packs into images, and Prometheus 3.11.1
# with its Kubernetes service discovery (Debian's prometheus 2.42 is built without it).
# Idempotent: a binary already there is not rebuilt (streamclient is, when its source changed); the
# module and build caches stay in $PYCRID_CACHE/go, so a rebuild after a wipe of bin/ is quick too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../env.sh"

version=v1.36.3
etcd_version=v3.6.8  # the etcd Kubernetes 1.36 is tested with (its go.mod requires it)
coredns_version=v1.14.2
metrics_server_version=v0.8.1
prometheus_release=3.11.1
prometheus_version=v0.311.1  # the project tags its Go module v0.3MM.P for release 3.MM.P
kube_commands=(kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl)
base="$PYCRID_CACHE/kube/$version"
bin="$base/bin"
mkdir -p "$bin"

missing() {  # the names among "$@" that are not built yet
  local name
  for name in "$@"; do [[ -x $bin/$name ]] || echo "$name"; done
}
mapfile -t kube_todo < <(missing "${kube_commands[@]}")
mapfile -t etcd_todo < <(missing etcd etcdctl)
mapfile -t addon_todo < <(missing coredns metrics-server prometheus)
kube_mod="$base/src/kubernetes"
streamclient_built="$kube_mod/streamclient.built"  # a copy of the source the binary was built from
streamclient_todo=0
if [[ ! -x $bin/streamclient ]] || ! cmp -s "$here/streamclient/main.go" "$streamclient_built"; then
  streamclient_todo=1
fi
if ((${#kube_todo[@]} + ${#etcd_todo[@]} + ${#addon_todo[@]} + streamclient_todo == 0)); then
  echo "kube: $version, etcd $etcd_version, streamclient, coredns, metrics-server and prometheus already built in $bin" >&2
  exit 0
fi

gobin=$(pycrid_go)
export GOMODCACHE="$PYCRID_CACHE/go/mod" GOCACHE="$PYCRID_CACHE/go/build"
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0

# Each is built inside a throwaway module (kept under $base/src for its go.sum) that requires the
# release: `go install pkg@version` asks the proxy for the version list, which the proxy here refuses.
# The output goes to a temporary dir first, so an interrupted build never leaves a half binary in bin/.
build() {  # build MODDIR LDFLAGS PACKAGE...
  local mod=$1 ldflags=$2; shift 2
  local out
  out=$(mktemp -d "$bin/.build.XXXXXX")
  (cd "$mod" && "$gobin" build -trimpath -ldflags "$ldflags" -o "$out/" "$@")
  mv "$out"/* "$bin/"
  rmdir "$out"
}

kube_module() {  # sets up $kube_mod, a module requiring the release, unless it is there already
  local mod=$kube_mod
  mkdir -p "$mod"
  if [[ ! -f $mod/go.sum ]]; then
    cat >"$mod/go.mod" <<MOD
module pycrid.local/kubernetes

go 1.26.0

require k8s.io/kubernetes $version
MOD
    printf '//go:build tools\n\npackage kubernetes\n\nimport (\n' >"$mod/tools.go"
    printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${kube_commands[@]}" >>"$mod/tools.go"
    printf ')\n' >>"$mod/tools.go"
    # k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0
    # with `replace => ./staging/...` lines, which Go ignores in a dependency: this module replaces
    # each of them with its published v0.MINOR.PATCH, read from the release's own go.mod.
    kube_gomod=$(cd "$mod" && "$gobin" mod download -json "k8s.io/kubernetes@$version" | jq -r .GoMod)
    staging=$("$gobin" mod edit -json "$kube_gomod" \
      | jq -r '.Replace[] | select(.New.Path | startswith("./staging/")) | .Old.Path')
    for m in $staging; do
      (cd "$mod" && "$gobin" mod edit -replace "$m=$m@v0${version#v1}")
    done
    (cd "$mod" && "$gobin" mod tidy >&2)
  fi
}

if ((${#kube_todo[@]})); then
  echo "kube: building ${kube_todo[*]} $version with $($gobin version)" >&2
  kube_module
  # Without these the binaries report v0.0.0-master. "archive" is the tree state Kubernetes's own
  # build stamps on a build from a source archive (no git checkout).
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  build "$kube_mod" "$ldflags" "${kube_todo[@]/#/k8s.io/kubernetes/cmd/}"
fi

if ((streamclient_todo)); then
  echo "kube: building streamclient with $($gobin version)" >&2
  kube_module
  # A package of the release's module, so it links the very client-go the release was built with
  # (go build marks the packages it imports as direct requirements in that go.mod).
  mkdir -p "$kube_mod/streamclient"
  cp "$here/streamclient/main.go" "$kube_mod/streamclient/main.go"
  build "$kube_mod" "-s -w" ./streamclient
  cp "$here/streamclient/main.go" "$streamclient_built"
fi

if ((${#etcd_todo[@]})); then
  echo "kube: building ${etcd_todo[*]} $etcd_version with $($gobin version)" >&2
  mod="$base/src/etcd"
  mkdir -p "$mod"
  if [[ ! -f $mod/go.sum ]]; then
    cat >"$mod/go.mod" <<MOD
module pycrid.local/etcd

go 1.26.0

require (
	go.etcd.io/etcd/server/v3 $etcd_version
	go.etcd.io/etcd/etcdctl/v3 $etcd_version
)
MOD
    printf '//go:build tools\n\npackage etcd\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n)\n' >"$mod/tools.go"
    (cd "$mod" && "$gobin" mod tidy >&2)
  fi
  # etcd's main package is the root of its server module; go build names the binary "v3", so each
  # is built on its own with -o NAME.
  declare -A etcd_pkg=([etcd]=go.etcd.io/etcd/server/v3 [etcdctl]=go.etcd.io/etcd/etcdctl/v3)
  for name in "${etcd_todo[@]}"; do
    out=$(mktemp -d "$bin/.build.XXXXXX")
    (cd "$mod" && "$gobin" build -trimpath -ldflags "-s -w" -o "$out/$name" "${etcd_pkg[$name]}")
    mv "$out/$name" "$bin/"
    rmdir "$out"
  done
fi
# The add-ons: each in a throwaway module requiring its release, as above. Their own go.mod files
# pin their Kubernetes libraries, with no replace lines to redo. tidy -e: Prometheus's test-only
# dependencies name a package its pinned version no longer has; the build needs none of them.
addon() {  # addon NAME MODULE VERSION PACKAGE LDFLAGS [TAGS]
  local name=$1 module=$2 addon_version=$3 package=$4 ldflags=$5 tags=${6:-}
  echo "kube: building $name $addon_version with $($gobin version)" >&2
  local mod="$base/src/$name"
  mkdir -p "$mod"
  if [[ ! -f $mod/go.sum ]]; then
    printf 'module pycrid.local/%s\n\ngo 1.26.0\n\nrequire %s %s\n' "$name" "$module" "$addon_version" >"$mod/go.mod"
    printf '//go:build tools\n\npackage addon\n\nimport _ "%s"\n' "$package" >"$mod/tools.go"
    (cd "$mod" && "$gobin" mod tidy -e >&2)
  fi
  local out
  out=$(mktemp -d "$bin/.build.XXXXXX")
  (cd "$mod" && "$gobin" build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$name" "$package")
  mv "$out/$name" "$bin/"
  rmdir "$out"
}
for name in "${addon_todo[@]}"; do
  case $name in
  coredns)
    addon coredns github.com/coredns/coredns "$coredns_version" github.com/coredns/coredns \
      "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_version" ;;
  metrics-server)
    # metrics-server reports client-go's version variables as its own (its Makefile stamps them).
    addon metrics-server sigs.k8s.io/metrics-server "$metrics_server_version" \
      sigs.k8s.io/metrics-server/cmd/metrics-server \
      "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$metrics_server_version -X k8s.io/client-go/pkg/version.gitTreeState=archive -X k8s.io/client-go/pkg/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ;;
  prometheus)
    # Only the Kubernetes service discovery (its build tags drop the cloud ones: half the build);
    # no web UI assets (the API is what hack/cluster and the tests use).
    addon prometheus github.com/prometheus/prometheus "$prometheus_version" \
      github.com/prometheus/prometheus/cmd/prometheus \
      "-s -w -X github.com/prometheus/common/version.Version=$prometheus_release" remove_all_sd,enable_kubernetes_sd ;;
  esac
done
echo "kube: built in $bin:" >&2
"$bin/kubelet" --version >&2
"$bin/etcd" --version | head -1 >&2
