#!/usr/bin/env bash
# Stops the guest hack/vm/boot.sh started and drops its overlay disk (the base image stays).
# Nothing running is fine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stop_pid "$VM_STATE/qemu.pid" qemu-system
rm -rf "$VM_STATE"
