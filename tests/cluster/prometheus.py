"""Prometheus finding the node through the apiserver (kubernetes_sd, role node) and scraping pycrid's
/metrics on it, and the kubelet's /metrics/resource, every 15 s (each scrape of the kubelet's is a
round of CRI stats calls). Debian's prometheus (2.42) is built
without the Kubernetes service discovery, so this is 3.11 built by hack/kube/build.sh."""
from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from tests.cluster import daemons, health
from tests.cluster.layout import PORTS, Layout
from tests.kubelet.release import binary


def config(layout: Layout) -> dict[str, Any]:
    pki = layout.pki
    tls = {"ca_file": str(pki / "ca.crt"), "cert_file": str(pki / "prometheus.crt"),
           "key_file": str(pki / "prometheus.key")}
    nodes = [{"role": "node", "api_server": layout.api_server, "tls_config": tls}]
    node_label = {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [
            # pycrid's exporter on the node's address (the kubelet's port replaced by pycrid's).
            {"job_name": "pycrid", "kubernetes_sd_configs": nodes,
             "relabel_configs": [{"source_labels": ["__meta_kubernetes_node_address_InternalIP"],
                                  "target_label": "__address__", "replacement": f"$1:{PORTS['pycrid-metrics']}"},
                                 node_label]},
            {"job_name": "kubelet-resource", "scheme": "https", "metrics_path": "/metrics/resource",
             "tls_config": tls, "kubernetes_sd_configs": nodes, "relabel_configs": [node_label]},
        ],
    }


def argv(layout: Layout) -> list[str]:
    base = layout.path("prometheus")
    return [str(binary("prometheus")), f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}", "--storage.tsdb.retention.time=1d"]


def start(layout: Layout, say: Callable[[str], None]) -> None:
    base = layout.path("prometheus")
    base.mkdir(parents=True, exist_ok=True)
    daemons.write_config(base / "prometheus.yml", json.dumps(config(layout), indent=2))  # YAML reads JSON
    if daemons.pid_of(layout, "prometheus") is None:
        say("starting prometheus")
        daemons.launch(layout, "prometheus", argv(layout))
    health.wait_until(layout, "prometheus", lambda: health.answers_ok(f"{layout.prometheus}/-/ready"), 60)


def query_url(layout: Layout, promql: str) -> str:
    return f"{layout.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
