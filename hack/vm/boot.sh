#!/usr/bin/env bash
# Boots the cgroup v2 guest (building it first if needed: hack/vm/build.sh) and waits until ssh
# answers. KVM, $PYCRID_VM_CPUS vCPUs (2) and $PYCRID_VM_MEMORY MiB (4096); its disk is a fresh
# copy-on-write overlay of the cached base image, so every boot starts clean. Shared over 9p at
# the same paths as on the host: this checkout (read-write), $PYCRID_CACHE (read-only: the venv,
# crictl/critest, images, kube binaries) and the Python the venv was made from when it is not
# Debian's. ssh listens on a free loopback port only, and user-mode networking is restricted:
# the guest reaches nothing outside itself. Idempotent: a guest already up is left as it is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [[ -f $VM_STATE/qemu.pid ]] && alive "$VM_STATE/qemu.pid" qemu-system; then
	echo "vm: already running (ssh port $(<"$VM_STATE/ssh-port"))" >&2
	exit 0
fi
base=$("$VM_HACK/vm/build.sh")
rm -rf "$VM_STATE" && mkdir -p "$VM_STATE"
qemu-img create -q -f qcow2 -b "$base/disk.img" -F raw "$VM_STATE/disk.qcow2"

shares=("src=$VM_TOP" "cache=$PYCRID_CACHE:ro")
home=$(sed -n 's/^home *= *//p' "$PYCRID_CACHE/venv/pyvenv.cfg" 2>/dev/null || true)
if [[ -n $home && $home != /usr/bin && $home != /bin ]]; then
	shares+=("py=$(dirname "$home"):ro")
fi
virtfs=()
for s in "${shares[@]}"; do
	tag=${s%%=*} path=${s#*=} ro=
	[[ $path == *:ro ]] && path=${path%:ro} ro=,readonly=on
	virtfs+=(-virtfs "local,path=$path,mount_tag=$tag,security_model=passthrough,id=$tag$ro")
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "$port" >"$VM_STATE/ssh-port"

# apparmor=0: Debian's kernel enables AppArmor, these machines' kernels do not; pycrid does not do
# AppArmor, and critest runs its AppArmor specs only where the kernel has it (the host skips them).
accel=($(vm_accel))
echo "${accel[*]}" >"$VM_STATE/accel"
start=$SECONDS
qemu-system-x86_64 -machine q35 "${accel[@]}" -smp "$VM_CPUS" -m "$VM_MEMORY" \
	-kernel "$base/vmlinuz" -initrd "$base/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 init=/sbin/pycrid-init cgroup_no_v1=all psi=1 apparmor=0 quiet pycrid.shares=$(IFS=,; echo "${shares[*]}")" \
	-drive "file=$VM_STATE/disk.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
	-nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
	-device virtio-rng-pci "${virtfs[@]}" \
	-display none -monitor none -serial "file:$VM_STATE/console.log" \
	-pidfile "$VM_STATE/qemu.pid" -daemonize
while ((SECONDS - start < ${PYCRID_VM_BOOT_TIMEOUT:-300})); do
	if vm_ssh true 2>/dev/null; then
		echo "vm: up in $((SECONDS - start)) s (ssh port $port, state $VM_STATE)" >&2
		exit 0
	fi
	alive "$VM_STATE/qemu.pid" qemu-system || break
	sleep 1
done
tail -40 "$VM_STATE/console.log" >&2
"$VM_HACK/vm/stop.sh"
vm_die "the guest did not come up (console above)"
