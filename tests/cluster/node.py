"""The node: pycrid with a config of its own, the kubelet on it (confined as tests/kubelet confines its
standalone kubelet, but registered with the apiserver), and kube-proxy in nftables mode. Their
configs are pure functions of the layout; start() starts whichever is not running."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.cgroups.manager import detect
from runtime.linux import proc
from tests.cluster import daemons, health
from tests.cluster.layout import CLUSTER_CIDR, CLUSTER_DOMAIN, DNS_SERVICE_IP, NODE_IP, NODE_NAME, PORTS, Layout
from tests.e2e.daemon import MIRRORED_HOSTS, REPO
from tests.kubelet import confinement, node_cgroups
from tests.kubelet.kubelet_config import KubeletSettings, kubelet_configuration
from tests.kubelet.release import binary

# /stats/summary has pod network stats only with this gate: without it the kubelet asks its
# built-in cAdvisor for them, which knows containerd's, CRI-O's and docker's containers only.
KUBELET_FEATURE_GATES = {"PodAndContainerStatsFromCRI": True}


def pycrid_config(layout: Layout) -> str:
    """pycrid's TOML: everything under the state dir; no pod range of its own (`pod_cidr = ""`: the
    kubelet sends the node's, and the node stays NotReady until it has); the public registries
    mirrored to the cluster's registry; metrics on the node's address for Prometheus."""
    base = layout.pycrid_dir
    lines = [f'listen = "unix://{layout.pycrid_socket}"', f'root = "{base / "root"}"', f'state = "{base / "run"}"',
             'log_level = "info"', "[network]", 'mode = "bridge"', 'pod_cidr = ""',
             "[metrics]", f'address = "{NODE_IP}:{PORTS["pycrid-metrics"]}"']
    for host in MIRRORED_HOSTS:
        lines += [f'[registries."{host}"]', f'mirrors = ["http://{layout.registry}"]']
    lines += [f'[registries."{layout.registry}"]', "insecure = true"]
    return "\n".join(lines) + "\n"


def parse_feature_gates(text: str) -> dict[str, bool]:
    """``Name=true,Other=false`` (the kubelet's --feature-gates syntax); "" is none."""
    gates = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or value.lower() not in ("true", "false") or not name:
            raise ValueError(f"feature gate {item!r}: expected NAME=true or NAME=false")
        gates[name] = value.lower() == "true"
    return gates


def kubelet_config(layout: Layout, runtime_endpoint: str, extra_gates: dict[str, bool] | None = None) -> dict[str, Any]:
    """``extra_gates`` (`up --kubelet-feature-gates`) go on top of the cluster's own."""
    kubelet = layout.kubelet_dir
    settings = KubeletSettings(
        runtime_endpoint=runtime_endpoint, static_pod_dir=kubelet / "manifests", pod_logs_dir=kubelet / "pod-logs",
        volume_plugin_dir=kubelet / "volume-plugins", cgroup_root=layout.cgroup_root, port=PORTS["kubelet"],
        healthz_port=PORTS["kubelet-healthz"], cgroup_v1=detect() == "v1",
        feature_gates={**KUBELET_FEATURE_GATES, **(extra_gates or {})})
    config = kubelet_configuration(settings)
    config.update({
        "address": NODE_IP,  # the apiserver, metrics-server and Prometheus reach it on the node's address
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(layout.pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(layout.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(layout.pki / "kubelet-serving.key"),
        "clusterDNS": [DNS_SERVICE_IP], "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",  # no upstream DNS: the namespace has no way out
        # A shared disk filling up must not evict the tests' pods.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
    })
    return config


def kube_proxy_config(layout: Layout) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "mode": "nftables", "clusterCIDR": CLUSTER_CIDR, "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{PORTS['kube-proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{PORTS['kube-proxy-metrics']}",
        # nf_conntrack_max is the machine's (only the initial namespace may set it): left alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def start_pycrid(layout: Layout, say: Callable[[str], None]) -> None:
    config = layout.pycrid_dir / "pycrid.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    daemons.write_config(config, pycrid_config(layout))
    if daemons.pid_of(layout, "pycrid") is None:
        say("starting pycrid")
        # The checkout's code, as the tests run it.
        daemons.launch(layout, "pycrid", [sys.executable, "-m", "cri", "serve", "--config", str(config)], cwd=REPO)
    health.wait_until(layout, "pycrid", lambda: health.unix_socket_answers(layout.pycrid_socket), 60)


def start_kubelet(layout: Layout, runtime_endpoint: str, extra_gates: dict[str, bool],
                  say: Callable[[str], None]) -> None:
    """Starts the kubelet, or restarts it when its config changed (other feature gates): the pods
    keep running, and the new kubelet takes them over."""
    kubelet = layout.kubelet_dir
    for d in ("manifests", "pod-logs", "volume-plugins", "root", "pki"):
        (kubelet / d).mkdir(parents=True, exist_ok=True)
    config = kubelet / "kubelet.json"
    changed = daemons.write_config(config, json.dumps(kubelet_config(layout, runtime_endpoint, extra_gates), indent=2))
    if changed and daemons.pid_of(layout, "kubelet") is not None:
        say("restarting the kubelet: its config changed")
        daemons.stop(layout, "kubelet", timeout=30)
    if daemons.pid_of(layout, "kubelet") is None:
        say(f"starting the kubelet on {runtime_endpoint}")
        if not node_cgroups.left_of(layout.cgroup_root):
            node_cgroups.make_root(layout.cgroup_root)
        if str(layout.kubelet_root) not in proc.mount_points():
            confinement.share_dir(layout.kubelet_root)
        argv = [str(binary("kubelet")), f"--config={config}", f"--kubeconfig={layout.kubeconfig('kubelet')}",
                f"--root-dir={layout.kubelet_root}", f"--cert-dir={kubelet / 'pki'}",
                f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}", "--v=2"]
        daemons.launch(layout, "kubelet", confinement.confined_command(argv, kubelet))
    health.wait_until(layout, "kubelet", lambda: health.answers_ok(
        f"http://127.0.0.1:{PORTS['kubelet-healthz']}/healthz"), 60)


def start_kube_proxy(layout: Layout, say: Callable[[str], None]) -> None:
    config = layout.path("kube-proxy.json")
    daemons.write_config(config, json.dumps(kube_proxy_config(layout), indent=2))
    if daemons.pid_of(layout, "kube-proxy") is None:
        say("starting kube-proxy")
        daemons.launch(layout, "kube-proxy", [str(binary("kube-proxy")), f"--config={config}", "--v=2"])
    health.wait_until(layout, "kube-proxy", lambda: health.answers_ok(
        f"http://127.0.0.1:{PORTS['kube-proxy-healthz']}/healthz"), 90)


def unmount_kubelet_root(layout: Layout) -> None:
    confinement.unmount_tree(Path(layout.kubelet_root))
