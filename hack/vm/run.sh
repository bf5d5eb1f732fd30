#!/usr/bin/env bash
# hack/vm/run.sh CMD [ARG...]: runs a command as root in the running guest (hack/vm/boot.sh), in
# this checkout's directory (the same path there), with PYCRID_CACHE and CI passed on, and exits
# with its status. Its output comes back over ssh as it is written.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($#)) || vm_die "usage: hack/vm/run.sh CMD [ARG...]"
cmd="cd $(printf '%q' "$VM_TOP") && export PYCRID_CACHE=$(printf '%q' "$PYCRID_CACHE")"
[[ -n ${CI-} ]] && cmd+=" CI=$(printf '%q' "$CI")"
# An emulated guest (no usable KVM) runs Python some 15 times slower: test harnesses scale the
# timeouts they wait for daemons to come up by this.
[[ $(<"$VM_STATE/accel") == *tcg* ]] && cmd+=" PYCRID_TEST_TIMEOUT_SCALE=${PYCRID_TEST_TIMEOUT_SCALE:-6}"
cmd+=" && exec$(printf ' %q' "$@")"
tty=()
[[ -t 0 && -t 1 ]] && tty=(-t)
vm_ssh "${tty[@]}" "$cmd"
