"""Runs last (conftest.py orders it so): once every pod of the cluster is deleted — the other modules'
namespaces are gone by now, and this deletes the add-ons — the kubelet and pycrid leave nothing of
them on the node: no sandbox, container, cgroup, veth, mount or pod process."""
from __future__ import annotations

import json
import os

from runtime.linux import proc
from tests.cluster.client import Cluster, eventually
from tests.cluster.runtimes import forkserver_pid
from tests.e2e.leaks import forkserver_children
from tests.kubelet import node_cgroups


def test_nothing_is_left_once_every_pod_is_deleted(cluster: Cluster) -> None:
    cluster.kubectl("-n", "kube-system", "delete", "deployment", "--all", "--wait=true", "--timeout=120s",
                    timeout=150)
    cluster.kubectl("delete", "pods", "--all", "-A", "--wait=true", "--timeout=120s", timeout=150)
    eventually("no pod left in the cluster", lambda: True if not cluster.get("pods", "-A")["items"] else None, 120,
               cluster.diagnosis)
    # The kubelet removes a deleted pod's stopped sandbox at its next container GC, once a minute.
    eventually("no sandbox left in pycrid", lambda: True if not json.loads(
        cluster.crictl("pods", "-o", "json").stdout)["items"] else None, 90, cluster.diagnosis, interval=2)
    assert json.loads(cluster.crictl("ps", "-a", "-o", "json").stdout)["containers"] == []

    layout = cluster.layout
    pod_cgroups = [f"{h}/{layout.cgroup_root}/kubepods/{qos}{name}"
                   for h in node_cgroups.mounted_hierarchies() for qos in ("", "burstable/", "besteffort/")
                   for name in _listing(f"{h}{layout.cgroup_root}/kubepods/{qos}") if name.startswith("pod")]
    assert pod_cgroups == []
    veths = json.loads(cluster.inside("ip", "-j", "link", "show", "type", "veth").stdout or "[]")
    assert [v["ifname"] for v in veths] == []
    mounts = [mount for mount in proc.mount_points()
              if mount.startswith(f"{layout.pycrid_dir}/") or mount.startswith(f"{layout.kubelet_root}/")]
    assert mounts == []
    forkserver = forkserver_pid(layout)
    assert forkserver is None or forkserver_children(forkserver) == ()


def _listing(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []
