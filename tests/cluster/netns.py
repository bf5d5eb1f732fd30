"""The cluster's network namespace: made once (`ip netns add`, so `ip netns exec NAME ...` works for
people too), entered by `up` before it starts anything, and deleted by `down` with everything in it
(the pod bridge, veths, routes, kube-proxy's and pycrid's nftables tables)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runtime.linux.constants import CLONE_NEWNET
from runtime.linux.syscalls import LinuxSyscalls
from tests.cluster.layout import NODE_IP, Layout


def ensure(layout: Layout) -> None:
    """The namespace with its loopback up and the node's address on it."""
    if not layout.netns_path.exists():
        subprocess.run(["ip", "netns", "add", layout.netns], check=True)
    ip = ["ip", "-n", layout.netns]
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
    if layout.netns_path.exists():
        subprocess.run(["ip", "netns", "delete", layout.netns], check=True)


def exists(layout: Layout) -> bool:
    return Path(layout.netns_path).exists()
