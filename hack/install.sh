#!/usr/bin/env bash
# Installs everything the tests need, idempotently: Debian packages, the venv with pycrid in it,
# the generated stubs, crictl + critest, the Kubernetes binaries (kubelet, ...; tests/kubelet), and
# the test images. A rerun on a used machine is fast.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"

packages=(
  python3-venv           # the venv below
  docker-registry skopeo umoci jq  # the local registry and the test images
  gcc libc6-dev          # static stand-ins in the test images (pause, nginx)
  containernetworking-plugins iptables nftables iproute2  # pod networking
  libseccomp2            # seccomp filters
  prometheus             # the metrics integration test scrapes with a real Prometheus
  containerd runc        # hack/bench compares against containerd 1.6 + runc
  openssl curl           # hack/cluster's certificates; the cluster tests' HTTP client
  qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client  # hack/vm: the cgroup v2 guest
  criu                   # CheckpointContainer and restore (hack/criu.sh makes it work on new kernels)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install: apt packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$PYCRID_CACHE/venv"
# The editable install points at this checkout: another checkout (or changed metadata) reinstalls.
stamp="$venv/.pycrid-$( (echo "$top"; cat "$top/pyproject.toml" "$top/setup.py") | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "install: venv $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$top[test]"
  touch "$stamp"
fi
PYTHON="$venv/bin/python" "$here/genproto.sh"
"$here/criu.sh"
"$here/critools.sh"
"$here/kube/build.sh"
"$here/images.sh" build
