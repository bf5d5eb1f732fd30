"""etcd and the control plane (kube-apiserver, kube-controller-manager, kube-scheduler): their command
lines, and starting each that is not running. All listen in the cluster's namespace only."""
from __future__ import annotations

from collections.abc import Callable

from tests.cluster import daemons, health
from tests.cluster.layout import CLUSTER_CIDR, CLUSTER_DOMAIN, NODE_IP, PORTS, SERVICE_CIDR, Layout
from tests.kubelet.release import binary


def etcd_argv(layout: Layout) -> list[str]:
    client, peer = f"http://127.0.0.1:{PORTS['etcd']}", f"http://127.0.0.1:{PORTS['etcd-peer']}"
    return [str(binary("etcd")), "--name=pycrid", f"--data-dir={layout.path('etcd')}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=pycrid={peer}", "--log-level=warn"]


def apiserver_argv(layout: Layout) -> list[str]:
    pki = layout.pki
    return [str(binary("kube-apiserver")),
            f"--advertise-address={NODE_IP}", f"--secure-port={PORTS['apiserver']}",
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            # The aggregation layer, for metrics-server's metrics.k8s.io (kubectl top).
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
            f"--cert-dir={layout.path('apiserver')}"]


def controller_manager_argv(layout: Layout) -> list[str]:
    pki, kubeconfig = layout.pki, layout.kubeconfig("controller-manager")
    return [str(binary("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", "--leader-elect=false",
            # The node's podCIDR, which the kubelet passes on to pycrid (UpdateRuntimeConfig).
            "--allocate-node-cidrs=true", f"--cluster-cidr={CLUSTER_CIDR}", "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=true"]


def scheduler_argv(layout: Layout) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [str(binary("kube-scheduler")), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", "--leader-elect=false"]


def start(layout: Layout, say: Callable[[str], None]) -> None:
    """Starts whichever of etcd, apiserver, controller-manager and scheduler is not running, in that
    order, each once the one before answers."""
    admin = health.tls_context(layout.pki / "ca.crt", layout.pki / "admin.crt", layout.pki / "admin.key")
    unverified = health.tls_context()
    steps: list[tuple[str, Callable[[Layout], list[str]], Callable[[], bool], float]] = [
        ("etcd", etcd_argv, lambda: health.answers_ok(f"http://127.0.0.1:{PORTS['etcd']}/health"), 30),
        ("kube-apiserver", apiserver_argv, lambda: health.answers_ok(f"{layout.api_server}/readyz", admin), 90),
        ("kube-controller-manager", controller_manager_argv,
         lambda: health.answers_ok("https://127.0.0.1:10257/healthz", unverified), 60),
        ("kube-scheduler", scheduler_argv,
         lambda: health.answers_ok("https://127.0.0.1:10259/healthz", unverified), 60),
    ]
    for name, argv, ready, timeout in steps:
        if daemons.pid_of(layout, name) is None:
            say(f"starting {name}")
            daemons.launch(layout, name, argv(layout))
        health.wait_until(layout, name, ready, timeout)
