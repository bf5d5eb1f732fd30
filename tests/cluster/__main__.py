"""hack/cluster's entry point: `python -m tests.cluster up [--runtime pycrid|containerd|containerd2]
[--kubelet-feature-gates NAME=BOOL,...]` and
`python -m tests.cluster down [--purge]`, on the state dir $PYCRID_CLUSTER_DIR (default
$PYCRID_CACHE/cluster)."""
from __future__ import annotations

import argparse
import os
import sys
import time

from tests.cluster import cluster
from tests.cluster.layout import Layout, default_dir
from tests.cluster.node import parse_feature_gates
from tests.cluster.runtimes import RUNTIMES


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hack/cluster")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the cluster, or whatever of it is not running")
    up.add_argument("--runtime", choices=RUNTIMES, help="the node's runtime, fixed at the first up (pycrid)")
    up.add_argument("--kubelet-feature-gates", metavar="NAME=BOOL,...",
                    help="extra kubelet feature gates, kept until the next --kubelet-feature-gates ('' drops "
                         "them); a running kubelet is restarted with them")
    down = commands.add_parser("down", help="stop the cluster and remove its pods, namespace, mounts, cgroups")
    down.add_argument("--purge", action="store_true", help="also remove the state dir")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("hack/cluster: needs root (namespaces, cgroups, mounts)", file=sys.stderr)
        return 1
    layout = Layout.at(default_dir())
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"cluster [{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    if args.command == "up":
        try:
            gates = None if args.kubelet_feature_gates is None else parse_feature_gates(args.kubelet_feature_gates)
        except ValueError as error:
            parser.error(str(error))
        cluster.up(layout, args.runtime, say, gates)
    else:
        cluster.down(layout, args.purge, say)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
