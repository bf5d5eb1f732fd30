# Shared by the hack/bench scripts (sourced, not run).
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HACK=$(dirname "$BENCH")
TOP=$(dirname "$HACK")
# shellcheck source=hack/env.sh
source "$HACK/env.sh"
# shellcheck source=hack/procs.sh
source "$HACK/procs.sh"
# crictl and critest from hack/install.sh.
PATH=$PYCRID_CACHE/bin:$PATH
# Every bench run works under one fixed directory on disk (not tmpfs: the pull benchmark unpacks
# 200 MB per round), so a rerun after a SIGKILLed run finds and cleans what that run left.
BENCH_WORK=${BENCH_WORK:-/var/tmp/pycrid-bench}
# The sandbox and test images, pushed under their upstream names; both runtimes mirror the
# public hosts to the local registry.
PAUSE_REF=pause:3.10
BUSYBOX_REF=e2e-test-images/busybox:1.29-2
# The runtimes every part measures, in its tables' order: pycrid and its two anchors, containerd
# 1.6 (Debian's, with Debian's runc) and containerd 2.x (containerd2-build.sh builds it and its
# runc from the Go module proxy on first use). Each has hack/bench/RUNTIME.sh start|stop.
RUNTIMES=(pycrid containerd containerd2)
CONTAINERD2_VERSION=v2.4.2
RUNC2_VERSION=v1.5.3
# The cgroup parent of the bench pods of each runtime: its alone, so stop can empty and remove it.
declare -A CGROUP_PARENT=([pycrid]=/pycrid-bench [containerd]=/containerd-bench [containerd2]=/containerd2-bench)

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# write_crictl_config DIR ENDPOINT: DIR/crictl.yaml, so every crictl call names its runtime with
# --config and never reads /etc/crictl.yaml.
write_crictl_config() {
	cat >"$1/crictl.yaml" <<EOC
runtime-endpoint: $2
image-endpoint: $2
timeout: 120
pull-image-on-create: false
EOC
}

# wait_crictl DIR WHAT PIDFILE LOG: wait up to 30 s for `crictl version` to answer through
# DIR/crictl.yaml, failing early with LOG's tail if the daemon (PIDFILE, WHAT) exits.
wait_crictl() {
	local dir=$1 what=$2 pidfile=$3 log=$4 i
	for ((i = 0; i < 300; i++)); do
		crictl --config "$dir/crictl.yaml" --timeout 2s version >/dev/null 2>&1 && return 0
		# running, not alive: until setsid has exec'd the daemon its command line is not the daemon's.
		running "$pidfile" || die "$what exited; last lines of $log:
$(tail -n 20 "$log")"
		sleep 0.1
	done
	die "$what did not answer in 30 s; last lines of $log:
$(tail -n 20 "$log")"
}

# start_perf ARGS...: a system-wide `perf record -a -k CLOCK_MONOTONIC ARGS` in the background
# (samples stamped on the clock the benches give their windows in), a second to settle;
# stop_perf ends it and waits until its data is written. Safe to call when none runs (traps).
PERF_PID=
start_perf() {
	perf record -a -k CLOCK_MONOTONIC "$@" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 1
}

stop_perf() {
	[[ -n $PERF_PID ]] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
}

# pycrid_with_images WORK: under WORK, a registry holding the pause and busybox images and pycrid
# (started with the caller's environment, e.g. PYCRID_TRACE=1) mirroring the public hosts to it,
# both images pulled: the profiling benches' pycrid alone. stop_pycrid_with_images WORK undoes it.
pycrid_with_images() {
	local work=$1 port ref
	port=$(free_port)
	"$HACK/registry.sh" start "$work/registry" "$port" >&2
	"$HACK/images.sh" push "127.0.0.1:$port" "$PAUSE_REF" "$BUSYBOX_REF" >&2
	"$BENCH/pycrid.sh" start "$work/pycrid" "$port" >&2
	for ref in "registry.k8s.io/$PAUSE_REF" "registry.k8s.io/$BUSYBOX_REF"; do
		crictl --config "$work/pycrid/crictl.yaml" pull "$ref" >/dev/null
	done
}

stop_pycrid_with_images() {
	"$BENCH/pycrid.sh" stop "$1/pycrid" >&2 || true
	"$HACK/registry.sh" stop "$1/registry" >&2 || true
	rm -rf "$1/registry/data" "$1/logs"
}

# remove_pods DIR: stop and remove every pod of the runtime DIR/crictl.yaml names, if it answers.
remove_pods() {
	local dir=$1
	[[ -f $dir/crictl.yaml ]] || return 0
	crictl --config "$dir/crictl.yaml" --timeout 2s version >/dev/null 2>&1 || return 0
	crictl --config "$dir/crictl.yaml" rmp --all --force >/dev/null 2>&1 ||
		echo "$(basename "$0"): removing the pods of $dir failed" >&2
}

# kill_cgroup_tree PATH: SIGKILL every process in cgroup PATH of every mounted hierarchy (v1 and
# v2), then remove the cgroups bottom-up; a cgroup is empty a moment after its last process is reaped.
kill_cgroup_tree() {
	local path=$1 root d i
	for root in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do
		d=$root$path
		[[ -d $d ]] || continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[[ -d $d ]] || break
			sleep 0.1
		done
		[[ -d $d ]] && echo "$(basename "$0"): could not remove cgroup $d" >&2
	done
	return 0
}

# unmount_under DIR: lazily unmount everything mounted at or below DIR, deepest first.
unmount_under() {
	local dir=$1 m
	findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
