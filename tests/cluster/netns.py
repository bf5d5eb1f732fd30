"""The cluster's network namespace: made once and pinned in the state dir, entered by `up` before it
starts anything, and removed by `down` with everything in it (the pod bridge, veths, routes,
kube-proxy's and pycrid's nftables tables). `hack/cluster/exec CMD` runs a command in it."""
from __future__ import annotations

import os
import subprocess

from runtime.linux import proc
from runtime.linux.constants import CLONE_NEWNET
from runtime.linux.syscalls import LinuxSyscalls
from tests.cluster.layout import NODE_IP, Layout


def ensure(layout: Layout) -> None:
    """The namespace with its loopback up and the node's address on it."""
    if str(layout.netns_path) not in proc.mount_points():
        layout.netns_path.touch()
        subprocess.run(["unshare", f"--net={layout.netns_path}", "true"], check=True)
    ip = command(layout, ["ip"])
    subprocess.run([*ip, "link", "set", "lo", "up"], check=True)
    addresses = subprocess.run([*ip, "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                               check=True).stdout
    if f" {NODE_IP}/32 " not in addresses:
        subprocess.run([*ip, "addr", "add", f"{NODE_IP}/32", "dev", "lo"], check=True)


def enter(layout: Layout) -> None:
    """Moves the calling thread (and so every process it starts from now on) into the namespace."""
    fd = os.open(layout.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        LinuxSyscalls().setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def command(layout: Layout, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespace."""
    return ["nsenter", f"--net={layout.netns_path}", "--", *argv]


def remove(layout: Layout) -> None:
    """Unpins the namespace; it goes with the last process in it."""
    if exists(layout):
        subprocess.run(["umount", str(layout.netns_path)], check=True)
    layout.netns_path.unlink(missing_ok=True)


def exists(layout: Layout) -> bool:
    return str(layout.netns_path) in proc.mount_points()
