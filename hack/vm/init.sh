#!/bin/bash
# PID 1 of the cgroup v2 guest (/sbin/pycrid-init, written into the image by hack/vm/build.sh).
# Mounts the kernel filesystems with cgroup2 alone at /sys/fs/cgroup (the kernel is booted with
# cgroup_no_v1=all), turns on every controller for the root's children as systemd does on a node,
# mounts the host's directories shared over 9p at their host paths (the kernel command line's
# pycrid.shares=TAG=PATH[:ro],...), sets up the user-mode network, starts sshd and then stays as
# tini, which reaps every orphan at once.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The initramfs moved /proc, /sys and /dev here already; mounting them again is for a boot without one.
mountpoint -q /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mountpoint -q /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mountpoint -q /dev || mount -t devtmpfs -o nosuid,mode=755 devtmpfs /dev
# No udev: load the drivers of the devices boot.sh gives the guest.
modprobe -a virtio_net virtio_rng 9pnet_virtio 9p
modprobe loop  # /dev/loop*: block devices the device-control tests open
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=000 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mkdir -p /run/lock /run/sshd /var/tmp
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
for c in $(</sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "init: controller $c stays off" >&2
done
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mount -o remount,rw /
# A few huge pages, so hugetlb limits can be set and read back.
echo 16 >/proc/sys/vm/nr_hugepages

shares=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^pycrid\.shares=//p')
IFS=, read -ra entries <<<"$shares"
for entry in "${entries[@]}"; do
	tag=${entry%%=*} path=${entry#*=} opts=
	[[ $path == *:ro ]] && path=${path%:ro} opts=,ro
	mkdir -p "$path"
	# The checkout changes under a running guest: no client cache there. The rest is read-only.
	cache=loose
	[[ -z $opts ]] && cache=mmap
	mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=$cache$opts" "$tag" "$path" ||
		echo "init: share $tag at $path not mounted" >&2
done

hostname pycrid-v2
ip link set lo up
# The initramfs's udev may have renamed it (enp0s1): the one interface besides lo.
nic=$(ls /sys/class/net | grep -vx lo | head -1)
ip link set "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
ip route add default via 10.0.2.2
/usr/sbin/sshd -E /var/log/sshd.log
echo "pycrid-init: up"  # hack/vm/boot.sh waits for this on the console, then for ssh
exec /usr/bin/tini -s -- /bin/sleep infinity
