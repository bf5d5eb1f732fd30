"""Where a one-node cluster keeps everything, and the names and addresses it uses.

A cluster lives in one state dir (``$PYCRID_CLUSTER_DIR``, by default ``$PYCRID_CACHE/cluster``) and
one network namespace of its own, pinned at ``netns`` in that dir: every component runs in it, so
its addresses, ports, bridge, routes and kube-proxy's nftables rules are the namespace's, never the
machine's, and two clusters (or a cluster and the e2e tests) never meet. That is why the addresses
and ports below can be fixed. What the machine does share — the cgroup tree and mounts — is named
after the dir's hash.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

NODE_IP = "172.29.0.1"          # on the namespace's loopback device: the node's InternalIP
CLUSTER_CIDR = "10.244.0.0/16"   # the controller-manager gives the node a /24 of it
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"     # the `kubernetes` Service, first of the range
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "pycrid-node"

PORTS = {"etcd": 2379, "etcd-peer": 2380, "apiserver": 6443, "kubelet": 10250, "kubelet-healthz": 10248,
         "kube-proxy-healthz": 10256, "kube-proxy-metrics": 10249, "pycrid-metrics": 9300,
         "registry": 5000, "prometheus": 9090}


def default_dir() -> Path:
    if os.environ.get("PYCRID_CLUSTER_DIR"):
        return Path(os.environ["PYCRID_CLUSTER_DIR"])
    return Path(os.environ.get("PYCRID_CACHE", "/var/cache/pycrid-dev")) / "cluster"


@dataclass(frozen=True)
class Layout:
    base: Path  # absolute

    @staticmethod
    def at(base: Path) -> Layout:
        return Layout(Path(os.path.abspath(base)))

    @property
    def tag(self) -> str:
        """Eight hex digits naming this cluster's machine-wide things."""
        return hashlib.sha256(str(self.base).encode()).hexdigest()[:8]

    @property
    def netns_path(self) -> Path:
        """The namespace's pin (a bind mount of it). Not in /run/netns: `ip netns` makes that a shared
        mount, whose unmounts in any copy of the mount namespace propagate to the machine's."""
        return self.path("netns")

    @property
    def cgroup_root(self) -> str:
        """The kubelet's cgroupRoot: its kubepods tree, and so every pod, goes below it."""
        return f"/pycrid-cluster-{self.tag}"

    def path(self, *parts: str) -> Path:
        return self.base.joinpath(*parts)

    @property
    def pki(self) -> Path:
        return self.path("pki")

    def kubeconfig(self, user: str) -> Path:
        return self.path("kubeconfig", f"{user}.kubeconfig")

    def log(self, component: str) -> Path:
        return self.path("logs", f"{component}.log")

    def pidfile(self, component: str) -> Path:
        return self.path("pids", f"{component}.pid")

    @property
    def pycrid_dir(self) -> Path:
        return self.path("pycrid")

    @property
    def pycrid_socket(self) -> Path:
        return self.path("pycrid", "run", "pycrid.sock")

    @property
    def kubelet_dir(self) -> Path:
        return self.path("kubelet")

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's --root-dir: a shared mount, so its volume mounts reach pycrid."""
        return self.path("kubelet", "root")

    @property
    def api_server(self) -> str:
        return f"https://{NODE_IP}:{PORTS['apiserver']}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{PORTS['registry']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{PORTS['prometheus']}"
