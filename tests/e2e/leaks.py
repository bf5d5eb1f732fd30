"""What a pycrid leaves on the machine: mounts under its dirs, processes of its fork server's tree,
zombies, and the cgroups of its containers and pause processes. The e2e suite asserts all are gone
after it cleans up."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass

from runtime.cgroups.paths import SCOPE_PREFIX
from runtime.linux import proc
from runtime.process.client import ForkServer
from tests.e2e.daemon import Daemon, crictl, remove_bridge
from tests.reaping import lasting_zombies


@dataclass(frozen=True)
class Leftovers:
    mounts: tuple[str, ...]
    processes: tuple[str, ...]
    zombies: tuple[int, ...]
    cgroups: tuple[str, ...]
    veths: tuple[str, ...]
    rules: tuple[str, ...]

    def empty(self) -> bool:
        return not (self.mounts or self.processes or self.zombies or self.cgroups or self.veths or self.rules)


def remove_everything(daemon: Daemon) -> tuple[Leftovers, bool]:
    """Removes every pod through the CRI, stops pycrid and its fork server, and returns what is
    left of it on the machine (and whether any container ran at all)."""
    crictl(daemon, "rmp", "--all", "--force")
    forkserver = ForkServer(str(daemon.state / "forkserver.sock"))
    forkserver_pid = forkserver.ping()
    log = daemon.log_path.read_text()
    started = set(re.findall(r"container ([0-9a-f]{64}) started", log))
    ready = set(re.findall(r"sandbox ([0-9a-f]{64}) \(", log))  # a pause may have had a cgroup
    left = Leftovers(mounts=mounts_under(str(daemon.root.parent)),
                     processes=forkserver_children(forkserver_pid),
                     zombies=lasting_zombies(forkserver_pid),
                     cgroups=container_cgroups(started | ready),
                     veths=bridge_ports(daemon.bridge), rules=pod_rules(daemon.bridge))
    assert daemon.stop() == 0, daemon.log_path.read_text()[-4000:]
    remove_bridge(daemon.bridge)
    # With no pod left, a stopped pycrid leaves no process behind: the fork server exits by itself.
    # Orphaned by the agent it outlived, it is reaped by PID 1, which here does that only every
    # ~2 s; an exited but unreaped fork server is PID 1's to clean, not ours.
    deadline = time.monotonic() + 5
    while (stat := proc.read_stat(forkserver_pid)) is not None and stat.state != "Z":
        assert time.monotonic() < deadline, "the fork server outlived pycrid with no pod left"
        time.sleep(0.05)
    return left, bool(started)


def mounts_under(base: str) -> tuple[str, ...]:
    return tuple(m for m in proc.mount_points() if m.startswith(base.rstrip("/") + "/"))


def forkserver_children(forkserver_pid: int) -> tuple[str, ...]:
    """Everything below the fork server: monitors, pause processes, containers."""
    return tuple(f"{s.pid} {s.comm} ({s.state})" for s in proc.descendants(forkserver_pid))


def bridge_ports(bridge: str) -> tuple[str, ...]:
    """Veths still attached to the pod bridge: each is a pod whose network was not torn down."""
    out = subprocess.run(["ip", "-j", "link", "show", "master", bridge], capture_output=True, text=True)
    return tuple(link["ifname"] for link in json.loads(out.stdout or "[]")) if out.returncode == 0 else ()


def pod_rules(table: str) -> tuple[str, ...]:
    """Per-pod nft rules (hostPort DNAT) left in the bridge's table."""
    out = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True, text=True)
    if out.returncode != 0:
        return ()
    rules = (item["rule"] for item in json.loads(out.stdout)["nftables"] if "rule" in item)
    return tuple(r.get("comment", "") for r in rules if r.get("comment", "").startswith("pod "))


def container_cgroups(ids: set[str], root: str = "/sys/fs/cgroup") -> tuple[str, ...]:
    """Cgroups named after one of ``ids``, as either cgroup driver names them."""
    found = []
    for hierarchy in sorted(os.listdir(root)):
        for dirpath, dirnames, _ in os.walk(os.path.join(root, hierarchy)):
            found += [os.path.join(dirpath, d) for d in dirnames
                      if d.removeprefix(f"{SCOPE_PREFIX}-").removesuffix(".scope") in ids]
    return tuple(found)
