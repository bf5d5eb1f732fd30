#!/usr/bin/env bash
# pycrid for the benchmarks, set up like containerd.sh sets up containerd: its config, root, state,
# socket and log under DIR, the public hosts mirrored to a local registry, its own bridge.
#
#   hack/bench/pycrid.sh start DIR PORT   serve CRI on unix://DIR/run/pycrid.sock, mirroring
#                                         docker.io, registry.k8s.io, gcr.io and k8s.gcr.io to
#                                         the plain-HTTP registry on 127.0.0.1:PORT; metrics off,
#                                         or on PYCRID_METRICS_ADDRESS (host:port) when set
#   hack/bench/pycrid.sh stop DIR         remove its pods, stop pycrid (its fork server then
#                                         exits), and remove its mounts, cgroups, bridge and nft
#                                         table
#
# DIR gets pycrid.toml, crictl.yaml, pycrid.log and root/, run/.
# Its pods are expected under the cgroup parent ${CGROUP_PARENT[pycrid]} (lib.sh, the pod configs of
# bench.py use it); stop empties and removes that cgroup.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=$PYCRID_CACHE/venv/bin/python
# pycrid's built-in bridge (its default network), on a bridge and subnet of ours alone.
BRIDGE=pbench0
SUBNET=10.252.0.0/24

write_config() {
	local dir=$1 port=$2 host
	{
		cat <<EOF
listen = "unix://$dir/run/pycrid.sock"
root = "$dir/root"
state = "$dir/run"
# containerd logs at info by default too.
log_level = "info"
sandbox_image = "registry.k8s.io/$PAUSE_REF"

[network]
mode = "bridge"
bridge = "$BRIDGE"
pod_cidr = "$SUBNET"

# Off unless asked for (as containerd's): the default port may be taken by another pycrid here.
[metrics]
address = "${PYCRID_METRICS_ADDRESS:-}"
EOF
		for host in docker.io registry.k8s.io gcr.io k8s.gcr.io; do
			printf '\n[registries."%s"]\nmirrors = ["http://127.0.0.1:%s"]\n' "$host" "$port"
		done
		printf '\n[registries."127.0.0.1:%s"]\ninsecure = true\n' "$port"
	} >"$dir/pycrid.toml"
}

cmd_start() {
	local dir=$1 port=$2
	[[ -x $PYTHON ]] || die "missing $PYTHON; run hack/install.sh"
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	alive "$dir/pycrid.pid" "cri serve --config $dir/pycrid.toml" &&
		die "a pycrid from $dir already runs; stop it first"
	write_config "$dir" "$port"
	write_crictl_config "$dir" "unix://$dir/run/pycrid.sock"
	# Byte-compiled first, as an installed pycrid is: a caller's PYTHONDONTWRITEBYTECODE would have the
	# agent compile its sources at every start (~150 ms more to serve, ~0.9 MiB more memory).
	"$PYTHON" -m compileall -q "$TOP/cri" "$TOP/runtime" "$TOP/metrics" >/dev/null
	# From the repo root, as tests/e2e/daemon.py runs it; its own session, like containerd's.
	(cd "$TOP" && exec setsid "$PYTHON" -m cri serve --config "$dir/pycrid.toml") \
		>>"$dir/pycrid.log" 2>&1 </dev/null &
	echo $! >"$dir/pycrid.pid"
	wait_crictl "$dir" "cri serve --config $dir/pycrid.toml" "$dir/pycrid.pid" "$dir/pycrid.log"
}

forkserver_pids() {
	pgrep -f -- " -m runtime\.process\.forkserver $1/run/forkserver\.sock\$" || true
}

cmd_stop() {
	local dir=$1 pid i
	[[ -d $dir ]] || return 0
	dir=$(cd "$dir" && pwd)
	remove_pods "$dir"
	stop_pid "$dir/pycrid.pid" "cri serve --config $dir/pycrid.toml"
	# With no pod left the fork server exits by itself once pycrid serve has stopped; it stays as
	# long as pods do (their monitors are its children) and ignores SIGTERM. Left after 5 s (the
	# pods could not be removed), it goes, and so do the monitors: forks of it, they share its
	# command line, which names our state dir. The pods' own processes go with their cgroups.
	for ((i = 0; i < 50; i++)); do
		[[ -z $(forkserver_pids "$dir") ]] && break
		sleep 0.1
	done
	for pid in $(forkserver_pids "$dir"); do kill -KILL "$pid" 2>/dev/null || true; done
	kill_cgroup_tree "${CGROUP_PARENT[pycrid]}"
	# Pinned pod namespaces and container rootfs mounts live under DIR/run.
	unmount_under "$dir"
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" || true; fi
	if nft list table inet "$BRIDGE" >/dev/null 2>&1; then nft delete table inet "$BRIDGE" || true; fi
	rm -rf "$dir/root" "$dir/run"
	return 0
}

case ${1-} in
start) [[ $# -eq 3 ]] || die "usage: $0 start DIR PORT"; cmd_start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
*) die "usage: $0 start DIR PORT | stop DIR" ;;
esac
