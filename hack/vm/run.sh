#!/usr/bin/env bash
# hack/vm/run.sh CMD [ARG...]: runs a command as root in the running guest (hack/vm/boot.sh), in
# this checkout's directory (the same path there), with PYCRID_CACHE and CI passed on, and exits
# with its status. Its output comes back over ssh as it is written.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($#)) || vm_die "usage: hack/vm/run.sh CMD [ARG...]"
cmd="cd $(printf '%q' "$VM_TOP") && export PYCRID_CACHE=$(printf '%q' "$PYCRID_CACHE")"
[[ -n ${CI-} ]] && cmd+=" CI=$(printf '%q' "$CI")"
cmd+=" && exec$(printf ' %q' "$@")"
tty=()
[[ -t 0 && -t 1 ]] && tty=(-t)
vm_ssh "${tty[@]}" "$cmd"
