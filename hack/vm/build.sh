#!/usr/bin/env bash
# Builds the cgroup v2 guest once: a Debian 12 root made by debootstrap from Debian's packages
# (with Debian's kernel, linux-image-amd64), turned into an ext4 disk image without mounting
# anything (mke2fs -d), plus the kernel, initrd and an ssh key. Idempotent: the result is cached
# under $PYCRID_CACHE/vm/base-<hash of this script and init.sh>, so a rerun prints its path at
# once; a changed recipe builds anew and drops older builds. The downloaded .debs stay in
# $PYCRID_CACHE/vm/debs for the next build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The guest runs the root suites with the host's venv, crictl/critest, images and kube binaries
# shared over 9p; it needs the programs the tests and pycrid call, and sshd.
packages=(
	linux-image-amd64 initramfs-tools kmod   # Debian's kernel; 9p and overlay are modules
	openssh-server tini                      # how commands get in; PID 1's reaper
	iproute2 iptables nftables containernetworking-plugins  # pod networking
	docker-registry skopeo umoci jq openssl  # the tests' local registry and images
	prometheus                               # the metrics integration test's real scrape
	curl                                     # the cluster tests' requests inside its namespace
	criu                                     # checkpoint/restore (Debian 12's 3.17 runs on the guest's 6.1)
	libseccomp2 procps psmisc util-linux mount e2fsprogs ca-certificates
	python3 libssl3 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libreadline8 libncursesw6
	libgdbm6 libuuid1 libexpat1               # what a venv's (pyenv) Python links against
)

# PID 1's script goes into the image by itself (debugfs, no mount): changing it costs a second.
# (/sbin is a link to /usr/sbin there, which debugfs does not follow.)
put_init() {
	local sum
	sum=$(sha256sum <"$VM_HACK/vm/init.sh" | cut -c1-16)
	[[ -f $1/init-$sum ]] && return 0
	debugfs -w -R "rm /usr/sbin/pycrid-init" "$1/disk.img" >/dev/null 2>&1 || true
	debugfs -w -f - "$1/disk.img" >/dev/null 2>&1 <<-EOF
		write $VM_HACK/vm/init.sh /usr/sbin/pycrid-init
		sif /usr/sbin/pycrid-init mode 0100755
	EOF
	debugfs -R "stat /usr/sbin/pycrid-init" "$1/disk.img" 2>/dev/null | grep -q "Mode:  0755" ||
		vm_die "could not write /usr/sbin/pycrid-init into $1/disk.img"
	rm -f "$1"/init-* && touch "$1/init-$sum"
}

base=$(vm_base)
if [[ -f $base/disk.img && -f $base/vmlinuz && -f $base/initrd.img ]]; then
	put_init "$base"
	echo "$base"
	exit 0
fi
command -v debootstrap >/dev/null && command -v qemu-system-x86_64 >/dev/null ||
	vm_die "needs debootstrap and qemu-system-x86 (hack/install.sh installs them)"
mkdir -p "$VM_DIR/debs"
[[ -f $VM_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C pycrid-vm -f "$VM_KEY"

mirror=${PYCRID_VM_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d "$VM_DIR/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "vm: debootstrap bookworm from $mirror into $root" >&2
start=$SECONDS
debootstrap --variant=minbase --cache-dir="$VM_DIR/debs" \
	--include="$(IFS=,; echo "${packages[*]}")" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -30 "$work/debootstrap.log" >&2; vm_die "debootstrap failed"; }

# A kernel installed in a chroot may skip its initrd: make it, with the modules to find the root.
printf '%s\n' virtio_pci virtio_blk ext4 9p 9pnet_virtio >>"$root/etc/initramfs-tools/modules"
kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -1)")
chroot "$root" update-initramfs -c -k "$kver" >/dev/null 2>&1 || chroot "$root" update-initramfs -u -k "$kver" >/dev/null

echo pycrid-v2 >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n127.0.1.1 pycrid-v2\n' >"$root/etc/hosts"
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$VM_KEY.pub" "$root/root/.ssh/authorized_keys"
chroot "$root" ssh-keygen -A >/dev/null
# Tests print long outputs over ssh; no DNS lookups of the client.
printf 'UseDNS no\nPermitRootLogin prohibit-password\nAcceptEnv CI PYCRID_*\n' >"$root/etc/ssh/sshd_config.d/pycrid.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

rm -rf "$base.tmp" && mkdir -p "$base.tmp"
cp "$root/boot/vmlinuz-$kver" "$base.tmp/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$base.tmp/initrd.img"
# Room for images, snapshots and container layers of a whole test run; sparse on the host.
# To stderr: this script's stdout is the base's path, and mke2fs says "Creating regular file" even with -q.
mke2fs -q -t ext4 -L pycrid-v2 -d "$root" "$base.tmp/disk.img" 12G >&2
for old in "$VM_DIR"/base-*; do
	[[ $old != "$base.tmp" ]] && rm -rf "$old"
done
put_init "$base.tmp"
mv "$base.tmp" "$base"
echo "vm: built $base (kernel $kver) in $((SECONDS - start)) s" >&2
echo "$base"
