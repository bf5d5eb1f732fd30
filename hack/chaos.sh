#!/usr/bin/env bash
# A CRI fuzz and chaos run against a real pycrid (tests/stress): seeded random, concurrent CRI
# calls with valid and hostile arguments while the agent and its helpers are SIGKILLed, then the
# invariants and a leak check. Prints a summary; exits non-zero on any violation or leak.
#
#   sudo hack/chaos.sh [--calls 10000] [--threads 8] [--seed N] [--kills N]
#                      [--kill agent,forkserver,monitor,any-helper] [--timeout SECONDS]
#
# Needs root, the venv, crictl and the test images that hack/install.sh provides.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/env.sh
source "$HACK/env.sh"
[[ $EUID -eq 0 ]] || { echo "chaos.sh: needs root" >&2; exit 1; }
cd "$HACK/.."
PATH=$PYCRID_CACHE/bin:$PATH exec "$PYCRID_CACHE/venv/bin/python" -m tests.stress "$@"
