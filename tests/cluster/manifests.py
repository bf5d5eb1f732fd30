"""The objects the cluster tests create, built as plain dicts (kubectl reads JSON)."""
from __future__ import annotations

from typing import Any

BUSYBOX = "busybox:1"  # library/busybox:1 on docker.io, mirrored to the cluster's registry
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# busybox httpd serving /www (index.html says the pod's name), for probes, Services and port-forward.
WEB = ["sh", "-c", "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && "
       "exec httpd -f -p 8080 -h /www"]


def container(name: str, command: list[str] | None = None, image: str = BUSYBOX, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"name": name, "image": image, **fields}
    if command is not None:
        made["command"] = command
    return made


def pod(namespace: str, name: str, *containers: dict[str, Any], labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": list(containers), **spec}}


def web_container(name: str = "web", **fields: Any) -> dict[str, Any]:
    return container(name, WEB, ports=[{"containerPort": 8080}], **fields)


def deployment(namespace: str, name: str, replicas: int, *containers: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 2, "containers": list(containers)}}}}


def service(namespace: str, name: str, selector: dict[str, str], port: int, target_port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "ports": [{"port": port, "targetPort": target_port}]}}
