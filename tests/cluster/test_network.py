"""Traffic on pycrid's pod network with kube-proxy's Service rules and CoreDNS: a Service reached by
its ClusterIP and by its DNS names from another pod (spread over both backends), pod to pod, and
pod to node."""
from __future__ import annotations

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import Cluster
from tests.cluster.layout import NODE_IP, PORTS


@pytest.fixture(scope="module")
def client(cluster: Cluster, namespace: str) -> str:
    cluster.apply(m.deployment(namespace, "echo", 2, m.web_container(
                      readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1})),
                  m.service(namespace, "echo", {"app": "echo"}, 80, 8080),
                  m.pod(namespace, "client", m.container("main", m.IDLE)))
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/echo", "--timeout=120s", timeout=150)
    cluster.wait_ready(namespace, "pod/client")
    return "client"


def fetch(cluster: Cluster, namespace: str, client: str, url: str) -> str:
    done = cluster.kubectl("-n", namespace, "exec", client, "--", "timeout", "10", "wget", "-qO-", url, check=False)
    assert done.returncode == 0, f"GET {url} from {client}: {done.stderr}"
    return done.stdout


def backends(cluster: Cluster, namespace: str) -> dict[str, str]:
    """The echo pods' names by IP."""
    pods = cluster.get("-n", namespace, "pods", "-l", "app=echo")["items"]
    return {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}


def test_service_by_cluster_ip(cluster: Cluster, namespace: str, client: str) -> None:
    cluster_ip = cluster.get("-n", namespace, "service", "echo")["spec"]["clusterIP"]
    names = set(backends(cluster, namespace).values())
    answers = {fetch(cluster, namespace, client, f"http://{cluster_ip}/").strip() for _ in range(20)}
    assert answers == {f"hello from {name}" for name in names}, answers


def test_service_by_dns_name(cluster: Cluster, namespace: str, client: str) -> None:
    names = {f"hello from {name}\n" for name in backends(cluster, namespace).values()}
    for host in ("echo", f"echo.{namespace}", f"echo.{namespace}.svc.cluster.local"):
        assert fetch(cluster, namespace, client, f"http://{host}/") in names, host
    lookup = cluster.kubectl("-n", namespace, "exec", client, "--", "nslookup",
                             f"echo.{namespace}.svc.cluster.local").stdout
    assert cluster.get("-n", namespace, "service", "echo")["spec"]["clusterIP"] in lookup, lookup


def test_pod_to_pod(cluster: Cluster, namespace: str, client: str) -> None:
    for ip, name in backends(cluster, namespace).items():
        assert fetch(cluster, namespace, client, f"http://{ip}:8080/") == f"hello from {name}\n"


def test_pod_to_node(cluster: Cluster, namespace: str, client: str) -> None:
    """The node's own address answers from a pod: here pycrid's metrics endpoint on it."""
    metrics = fetch(cluster, namespace, client, f"http://{NODE_IP}:{PORTS['pycrid-metrics']}/metrics")
    assert "pycrid_build_info" in metrics
