#!/usr/bin/env bash
# containerd 2.x + runc, the benchmarks' second anchor: containerd.sh's start and stop with the
# binaries containerd2-build.sh builds (on the first start) and a config of version 3.
#
#   hack/bench/containerd2.sh start DIR PORT | stop DIR     (as containerd.sh)
CONTAINERD_ANCHOR=2 exec "$(dirname "${BASH_SOURCE[0]}")/containerd.sh" "$@"
