#!/usr/bin/env bash
# The benchmarks' anchors: containerd 1.6 + runc from Debian, or (run as containerd2.sh, which sets
# CONTAINERD_ANCHOR=2) containerd 2.x + runc built by containerd2-build.sh. Either is run from a
# config of our own, never /etc/containerd/config.toml, with root, state, socket, registry hosts
# and CNI config all under DIR, so it cannot collide with a real containerd on /run/containerd.
#
#   hack/bench/containerd.sh start DIR PORT   serve CRI on unix://DIR/containerd.sock, mirroring
#                                             docker.io, registry.k8s.io, gcr.io and k8s.gcr.io
#                                             to the plain-HTTP registry on 127.0.0.1:PORT
#   hack/bench/containerd.sh stop DIR         remove its pods, stop containerd and its shims, and
#                                             remove its mounts, cgroups, bridge and netns
#
# DIR gets config.toml, certs.d/, net.d/, crictl.yaml, containerd.log and root/, state/, opt/.
# Its pods are expected under the cgroup parent ${CGROUP_PARENT[containerd]} or, for 2.x,
# ${CGROUP_PARENT[containerd2]} (lib.sh; the pod configs of bench.py use it); stop empties and
# removes that cgroup.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The CNI bridge and subnet are each anchor's alone: pycrid's bench bridge and any real node use others.
if [[ ${CONTAINERD_ANCHOR:-1} == 2 ]]; then
	RUNTIME=containerd2
	ANCHOR_BIN=$PYCRID_CACHE/containerd2/$CONTAINERD2_VERSION/bin
	CONTAINERD=$ANCHOR_BIN/containerd
	BRIDGE=cbench2
	SUBNET=10.250.0.0/24
	CNI_NAME=pycrid-bench2
else
	RUNTIME=containerd
	CONTAINERD=/usr/bin/containerd
	BRIDGE=cbench0
	SUBNET=10.251.0.0/24
	CNI_NAME=pycrid-bench
fi

write_config() {
	if [[ ${CONTAINERD_ANCHOR:-1} == 2 ]]; then write_config_v3 "$@"; else write_config_v2 "$@"; fi
}

# containerd 1.6: config version 2, every CRI setting under the one CRI plugin.
write_config_v2() {
	local dir=$1
	cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
# Out of /opt/containerd as well.
plugin_dir = ""

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/$PAUSE_REF"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod netns as bind mounts under DIR/state, not in the host's /var/run/netns.
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE, so runc cannot give the pause container the -998
  # oom_score_adj containerd asks for; clamp it to containerd's own, as for rootless containerd.
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's state, otherwise in /run/containerd/runc.
        Root = "$dir/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/net.d"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
EOF
}

# containerd 2.x: config version 3, the same settings where 2.x keeps them (images, runtime and
# the gRPC/streaming parts of CRI are plugins of their own). Its shim and runc are the ones built
# with it, named by path: Debian's 1.6 shim and runc are on PATH too. Everything else is 2.x's
# default, such as pulls through the transfer service (which reads the same certs.d hosts) and NRI,
# whose socket and plugin dirs move under DIR.
write_config_v3() {
	local dir=$1
	cat >"$dir/config.toml" <<EOF
version = 3
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.nri.v1.nri"]
  socket_path = "$dir/nri/nri.sock"
  plugin_path = "$dir/nri/plugins"
  plugin_config_path = "$dir/nri/conf.d"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/$PAUSE_REF"

  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$dir/certs.d"

[plugins."io.containerd.cri.v1.runtime"]
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true

  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "$ANCHOR_BIN/containerd-shim-runc-v2"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$ANCHOR_BIN/runc"
        Root = "$dir/runc"

  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/net.d"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

# hosts.toml per mirrored host: the local registry first, over plain HTTP.
write_hosts() {
	local dir=$1 port=$2 host server
	for host in docker.io registry.k8s.io gcr.io k8s.gcr.io; do
		server=https://$host
		[[ $host == docker.io ]] && server=https://registry-1.docker.io
		mkdir -p "$dir/certs.d/$host"
		cat >"$dir/certs.d/$host/hosts.toml" <<EOF
server = "$server"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
	done
}

# Without a CNI config containerd refuses RunPodSandbox ("cni plugin not initialized"), so
# it gets the shape of its own default conflist: a bridge with NAT egress (as pycrid's built-in
# bridge does) and host-local IPAM keeping its leases under DIR. containerd adds loopback itself.
write_cni() {
	local dir=$1
	mkdir -p "$dir/net.d"
	cat >"$dir/net.d/10-bench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni-ipam"
      }
    }
  ]
}
EOF
}

cmd_start() {
	local dir=$1 port=$2
	# The first run builds the 2.x anchor (minutes); every later one finds it at once.
	if [[ ${CONTAINERD_ANCHOR:-1} == 2 ]]; then "$BENCH/containerd2-build.sh" >/dev/null; fi
	[[ -x $CONTAINERD ]] || die "missing $CONTAINERD (Debian packages containerd runc; hack/install.sh)"
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	alive "$dir/containerd.pid" "$CONTAINERD --config $dir/config.toml" &&
		die "a containerd from $dir already runs; stop it first"
	write_config "$dir"
	write_hosts "$dir" "$port"
	write_cni "$dir"
	write_crictl_config "$dir" "unix://$dir/containerd.sock"
	# Its own session: the caller's terminal signals must not reach it, our stop does.
	setsid "$CONTAINERD" --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 </dev/null &
	echo $! >"$dir/containerd.pid"
	wait_crictl "$dir" "$CONTAINERD --config $dir/config.toml" "$dir/containerd.pid" "$dir/containerd.log"
}

# The shims re-parent to init and outlive containerd; each names our socket in its command line.
shim_pids() {
	pgrep -f -- "containerd-shim-runc-v2 -namespace [^ ]+ -id [^ ]+ -address $1/containerd.sock( |\$)" || true
}

# Rules the bridge plugin's ipMasq left in the nat table, if containerd died before CNI DEL: each
# per-pod chain and its POSTROUTING jump carry the comment 'name: "pycrid-bench" id: ...'.
remove_masquerade_rules() {
	local rule chain
	iptables-save -t nat 2>/dev/null |
		TAG="name: \\\"$CNI_NAME\\\"" awk '/^-A POSTROUTING / && index($0, ENVIRON["TAG"])' |
		while read -r rule; do
			chain=${rule##* -j }
			eval "iptables -t nat -D ${rule#-A }" 2>/dev/null || true
			iptables -t nat -F "$chain" 2>/dev/null || true
			iptables -t nat -X "$chain" 2>/dev/null || true
		done
}

cmd_stop() {
	local dir=$1 pid addr
	[[ -d $dir ]] || return 0
	dir=$(cd "$dir" && pwd)
	remove_pods "$dir"
	stop_pid "$dir/containerd.pid" "$CONTAINERD --config $dir/config.toml"
	for pid in $(shim_pids "$dir"); do kill -KILL "$pid" 2>/dev/null || true; done
	kill_cgroup_tree "${CGROUP_PARENT[$RUNTIME]}"
	# The CRI plugin pins pod netns under DIR/state; the overlay rootfs mounts are under DIR too.
	unmount_under "$dir"
	remove_masquerade_rules
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" || true; fi
	# containerd puts shim sockets in /run/containerd/s whatever its state dir; a killed shim
	# leaves its socket there, named in its bundle's address file.
	for addr in "$dir"/state/io.containerd.runtime.v2.task/*/*/address; do
		[[ -f $addr ]] && rm -f "$(sed 's|^unix://||' "$addr")"
	done
	rmdir /run/containerd/s /run/containerd 2>/dev/null || true
	rm -rf "$dir/root" "$dir/state" "$dir/opt" "$dir/runc" "$dir/cni-ipam" "$dir/nri" "$dir"/containerd.sock*
	return 0
}

case ${1-} in
start) [[ $# -eq 3 ]] || die "usage: $0 start DIR PORT"; cmd_start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
*) die "usage: $0 start DIR PORT | stop DIR" ;;
esac
