"""What `up` applies to a fresh cluster: CoreDNS (the cluster's DNS, as kubeadm deploys it),
metrics-server (the resource metrics API behind `kubectl top`), and the RBAC the rest needs.
Images come from the public names pycrid mirrors to the cluster's registry (hack/images.sh)."""
from __future__ import annotations

from typing import Any

from tests.cluster.layout import CLUSTER_DOMAIN, DNS_SERVICE_IP

COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.14.2"
METRICS_SERVER_IMAGE = "registry.k8s.io/metrics-server/metrics-server:v0.8.1"
COREFILE = f"""\
.:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}}
"""
CRITICAL = {"priorityClassName": "system-cluster-critical",
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}
RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}}


def _meta(name: str, namespace: str | None = "kube-system", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _role(kind: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": _meta(name, "kube-system" if kind == "Role" else None), "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, subject: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": _meta(name, "kube-system" if kind == "RoleBinding" else None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject]}


def _service_account(name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}


def prometheus_rbac() -> list[dict[str, Any]]:
    """Node discovery through the apiserver, and the kubelet's metrics (its webhook authorizer asks
    the apiserver about the `nodes/metrics` subresource)."""
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
             {"apiGroups": [""], "resources": ["nodes/metrics", "nodes/proxy"], "verbs": ["get"]}]
    return [_role("ClusterRole", "pycrid:prometheus", rules),
            _binding("ClusterRoleBinding", "pycrid:prometheus", "ClusterRole", "pycrid:prometheus",
                     {"kind": "User", "name": "prometheus", "apiGroup": "rbac.authorization.k8s.io"})]


def coredns() -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    rules = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
    container = {
        "name": "coredns", "image": COREDNS_IMAGE, "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 10,
                          "periodSeconds": 10, "failureThreshold": 5},
        # A probe's 1 s default timeout fails on a node whose CPUs are busy (an emulated guest's are).
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2, "timeoutSeconds": 5},
        "securityContext": {**RESTRICTED, "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("coredns", **labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {**CRITICAL, "serviceAccountName": "coredns", "dnsPolicy": "Default",
                                       "containers": [container],
                                       "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("kube-dns", **labels),
               "spec": {"selector": labels, "clusterIP": DNS_SERVICE_IP,
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                  {"name": "metrics", "port": 9153, "protocol": "TCP"}]}}
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns")},
            _role("ClusterRole", "system:coredns", rules),
            _binding("ClusterRoleBinding", "system:coredns", "ClusterRole", "system:coredns",
                     _service_account("coredns")),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns"), "data": {"Corefile": COREFILE}},
            deployment, service]


def metrics_server() -> list[dict[str, Any]]:
    labels = {"k8s-app": "metrics-server"}
    rules = [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
             {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]
    container = {
        "name": "metrics-server", "image": METRICS_SERVER_IMAGE,
        # The kubelet's serving certificate is signed by the cluster CA, which every pod has. The
        # scrape's timeout may be at most 9/10 of the resolution (metrics-server refuses to start);
        # 10 s, its default, lets a slow node (an emulated guest's) answer.
        "args": ["--cert-dir=/tmp", "--secure-port=10250", "--metric-resolution=15s", "--kubelet-request-timeout=10s",
                 "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
                 "--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"],
        "ports": [{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                           "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": "50m", "memory": "100Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {**RESTRICTED, "runAsNonRoot": True, "runAsUser": 65534},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("metrics-server", **labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {**CRITICAL, "serviceAccountName": "metrics-server",
                                       "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("metrics-server", **labels),
               "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": "https"}]}}
    api_service = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                   "metadata": _meta("v1beta1.metrics.k8s.io", None, **labels),
                   "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                            "versionPriority": 100, "insecureSkipTLSVerify": True,
                            "service": {"name": "metrics-server", "namespace": "kube-system"}}}
    account = _service_account("metrics-server")
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("metrics-server")},
            _role("ClusterRole", "system:metrics-server", rules),
            _binding("ClusterRoleBinding", "system:metrics-server", "ClusterRole", "system:metrics-server", account),
            _binding("ClusterRoleBinding", "metrics-server:system:auth-delegator", "ClusterRole",
                     "system:auth-delegator", account),
            _binding("RoleBinding", "metrics-server-auth-reader", "Role", "extension-apiserver-authentication-reader",
                     account),
            deployment, service, api_service]


def all_manifests() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": [*prometheus_rbac(), *coredns(), *metrics_server()]}
