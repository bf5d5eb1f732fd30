#!/usr/bin/env bash
# All benchmarks, pycrid side by side with its two anchors, containerd 1.6 + runc (Debian's) and
# containerd 2.x + runc (built from the Go module proxy on first use), in one run: the cold-cache pull
# (pull.sh), the pod start/stop/memory benchmark through crictl (pods.sh), the CRI call
# latencies critest -benchmark measures (rpcs.sh), exec round trips and port-forward
# throughput (streaming.sh), 30 pods started at once through gRPC (burst.sh), pycrid's scrape
# cost per container (scrape.sh), and pod startup latency under a kubelet in a hack/cluster
# cluster (startup.sh). Writes a markdown summary to
# _out/bench.md and prints it; each part's progress goes to _out/bench-PART.log and stderr.
#
#   hack/bench/run.sh            PULL_ROUNDS (default 3) and PODS (default 20) from the environment
#
# Each part cleans up after itself, also on Ctrl-C, and first cleans what an interrupted earlier
# run left, so a rerun always starts from the same state.
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PULL_ROUNDS=${PULL_ROUNDS:-3}
PODS=${PODS:-20}
OUT=$TOP/_out
SUMMARY=$OUT/bench.md

# A part ends with its own cleanup when Ctrl-C reaches it too; then stop here rather than go on.
trap 'exit 130' INT TERM

# part NAME CMD...: runs one part; its markdown goes to the summary, or on failure the tail of its
# log does. tee ignores SIGINT (-i) so the part's cleanup messages still get through.
part() {
	local name=$1 log=$OUT/bench-$1.log
	shift
	echo "run.sh: $*" >&2
	if "$@" 2>&1 >"$OUT/bench-$name.md" | tee -i "$log" >&2; then
		cat "$OUT/bench-$name.md" >>"$SUMMARY"
	else
		FAILED+=("$name")
		{
			echo "### $name: FAILED (\`$*\`)"
			echo
			echo '```'
			tail -n 40 "$log"
			echo '```'
		} >>"$SUMMARY"
	fi
	echo >>"$SUMMARY"
}

# hack/install.sh is idempotent: the venv, crictl, containerd 1.6 and runc are there after it; the
# 2.x anchor is built here, not there: only the bench needs it.
"$HACK/install.sh" >&2
anchor2=$("$BENCH/containerd2-build.sh")
mkdir -p "$OUT"
FAILED=()
commit=$(git -C "$TOP" rev-parse --short HEAD)
git -C "$TOP" diff --quiet HEAD -- . ':!hack/bench' || commit+=" with uncommitted changes"
{
	echo "# pycrid benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- pycrid $commit ($("$PYCRID_CACHE/venv/bin/python" --version)), network: built-in bridge"
	echo "- $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -n1), network: CNI bridge + host-local"
	echo "- $("$anchor2/containerd" --version | cut -d' ' -f1,3), $("$anchor2/runc" --version | head -n1)," \
		"network: CNI bridge + host-local"
	echo "- $(crictl --version); kernel $(uname -r), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
		"cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/tmpfs/v1/; s/cgroup2fs/v2/'), cgroupfs driver;" \
		"load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- commands: \`hack/bench/pull.sh $PULL_ROUNDS\`, \`hack/bench/pods.sh $PODS\`, \`hack/bench/rpcs.sh $PODS\`," \
		"\`hack/bench/streaming.sh\`, \`hack/bench/burst.sh 30\`, \`hack/bench/scrape.sh 10 100\`," \
		"\`hack/bench/startup.sh\`"
	echo
} >"$SUMMARY"
part pull "$BENCH/pull.sh" "$PULL_ROUNDS"
part pods "$BENCH/pods.sh" "$PODS"
part rpcs "$BENCH/rpcs.sh" "$PODS"
part streaming "$BENCH/streaming.sh"
part burst "$BENCH/burst.sh" 30
part scrape "$BENCH/scrape.sh" 10 100
part startup "$BENCH/startup.sh"
cat "$SUMMARY"
((${#FAILED[@]} == 0)) || die "failed: ${FAILED[*]}; see $SUMMARY"
