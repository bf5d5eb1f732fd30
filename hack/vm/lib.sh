# Shared settings of the cgroup v2 guest scripts (sourced, not run). See hack/vm/README.md.
VM_HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/env.sh
. "$VM_HACK/env.sh"
# shellcheck source=hack/procs.sh
. "$VM_HACK/procs.sh"
VM_TOP=$(dirname "$VM_HACK")

# The image cache: the base disk, kernel, initrd and ssh key, kept between runs.
VM_DIR=$PYCRID_CACHE/vm
# One running guest's files (overlay disk, pid, ssh port, console log); another name runs another.
# One per checkout by default: a guest shares its checkout over 9p, so another checkout's guest
# (another worktree on this machine) must never be taken for this one's.
VM_STATE=${PYCRID_VM_STATE:-$VM_DIR/run-$(echo "$VM_TOP" | sha256sum | cut -c1-8)}
VM_MEMORY=${PYCRID_VM_MEMORY:-4096}  # MiB
VM_CPUS=${PYCRID_VM_CPUS:-2}
VM_KEY=$VM_DIR/id_ed25519
VM_SSH_OPTS=(-i "$VM_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
	-o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=15 -o ServerAliveCountMax=8)

vm_die() { echo "vm: $*" >&2; exit 1; }

# The base image of the current recipe (hack/vm/build.sh makes it and prints its path).
vm_base() {
	local key
	key=$(sha256sum <"$VM_HACK/vm/build.sh" | cut -c1-12)
	echo "$VM_DIR/base-$key"
}

# vm_ssh ARGS...: ssh into the running guest as root.
vm_ssh() {
	[[ -f $VM_STATE/ssh-port ]] || vm_die "no guest running under $VM_STATE (hack/vm/boot.sh)"
	ssh "${VM_SSH_OPTS[@]}" -p "$(<"$VM_STATE/ssh-port")" root@127.0.0.1 "$@"
}

# How qemu runs the guest. KVM where it can boot Debian's kernel. Where /dev/kvm is PVM's
# (kvm_pvm: nested virtualization that boots only kernels built as PVM guests, as on these
# machines) it cannot, and the guest is emulated (TCG, one host thread per vCPU).
vm_accel() {
	if [[ -c /dev/kvm && ! -d /sys/module/kvm_pvm && ${PYCRID_VM_ACCEL:-} != tcg ]]; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg,thread=multi,tb-size=512 -cpu max"
	fi
}
