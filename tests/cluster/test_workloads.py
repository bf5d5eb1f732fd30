"""Workloads through kubectl: run and logs (also followed), a Deployment's rollout, scale, restart and
delete, a Job, init containers sharing an emptyDir, ConfigMap, Secret and downward API, and a
crashing container's restarts and exit code."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually

CRASH = "crasher"


@pytest.fixture(scope="module", autouse=True)
def crasher(cluster: Cluster, namespace: str) -> Iterator[None]:
    """Started first: its restarts back off (10 s, then 20 s) while the other tests run."""
    cluster.apply(m.pod(namespace, CRASH, m.container("crash", ["sh", "-c", "echo crashing; exit 3"])))
    yield


def pod_phase(cluster: Cluster, namespace: str, name: str, phase: str) -> dict[str, Any] | None:
    pod = cluster.pod(namespace, name)
    return pod if pod["status"].get("phase") == phase else None


def test_run_and_logs(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "run", "once", f"--image={m.BUSYBOX}", "--restart=Never", "--command", "--",
                    "sh", "-c", "echo hello from $(hostname); echo to stderr >&2")
    eventually("pod once Succeeded", lambda: pod_phase(cluster, namespace, "once", "Succeeded"), 60, cluster.diagnosis)
    logs = cluster.kubectl("-n", namespace, "logs", "once").stdout
    assert logs.splitlines() == ["hello from once", "to stderr"], logs


def test_logs_follow(cluster: Cluster, namespace: str) -> None:
    """`logs -f` started while the container runs gets every line, in order, and ends with it."""
    count = 15
    cluster.apply(m.pod(namespace, "ticker", m.container(
        "tick", ["sh", "-c", f"sleep 1; for i in $(seq 1 {count}); do echo line $i; sleep 0.2; done"]),
        restartPolicy="Never"))
    cluster.wait_ready(namespace, "pod/ticker")
    follow = subprocess.run(cluster.kubectl_argv("-n", namespace, "logs", "-f", "ticker"),
                            capture_output=True, text=True, env=cluster.env, timeout=60)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == [f"line {i}" for i in range(1, count + 1)], follow.stdout
    eventually("ticker Succeeded", lambda: pod_phase(cluster, namespace, "ticker", "Succeeded"), 30, cluster.diagnosis)


def ready_pods(cluster: Cluster, namespace: str, app: str) -> list[str]:
    pods = cluster.get("-n", namespace, "pods", "-l", f"app={app}")["items"]
    return sorted(p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", ())))


def rollout(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200)


def test_deployment_rolls_out(cluster: Cluster, namespace: str) -> None:
    # The probe's 1 s default timeout fails now and then on a busy node (the emulated guest's).
    cluster.apply(m.deployment(namespace, "web", 2, m.web_container(
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1, "timeoutSeconds": 5})))
    rollout(cluster, namespace, "web")
    assert len(ready_pods(cluster, namespace, "web")) == 2


def test_deployment_scales_to_10(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "scale", "deployment/web", "--replicas=10")
    rollout(cluster, namespace, "web")
    # Ready as the pods are now, not as the Deployment counted them a moment ago.
    eventually("10 web pods ready", lambda: len(ready_pods(cluster, namespace, "web")) == 10 or None, 60,
               lambda: f"ready: {ready_pods(cluster, namespace, 'web')}\n{cluster.diagnosis()}")


def test_rollout_restart_replaces_every_pod(cluster: Cluster, namespace: str) -> None:
    before = set(ready_pods(cluster, namespace, "web"))
    cluster.kubectl("-n", namespace, "rollout", "restart", "deployment/web")
    rollout(cluster, namespace, "web")
    after = eventually("10 new pods ready, no old one left",
                       lambda: (p if len(p := set(ready_pods(cluster, namespace, "web"))) == 10 and not p & before
                                and len(cluster.get("-n", namespace, "pods", "-l", "app=web")["items"]) == 10
                                else None), 90, cluster.diagnosis)
    assert not after & before


def test_deployment_delete_removes_its_pods(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "delete", "deployment/web", "--wait=true", "--timeout=120s", timeout=150)
    eventually("the web pods gone",
               lambda: True if not cluster.get("-n", namespace, "pods", "-l", "app=web")["items"] else None,
               90, cluster.diagnosis)


def test_job_completes(cluster: Cluster, namespace: str) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count", "namespace": namespace},
           "spec": {"completions": 3, "parallelism": 3, "backoffLimit": 0,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [
                        m.container("count", ["sh", "-c", "echo counted $JOB_COMPLETION_INDEX"])]}},
                    "completionMode": "Indexed"}}
    cluster.apply(job)
    cluster.kubectl("-n", namespace, "wait", "--for=condition=Complete", "job/count", "--timeout=120s", timeout=150)
    status = cluster.get("-n", namespace, "job", "count")["status"]
    assert status["succeeded"] == 3 and not status.get("failed"), status
    logs = cluster.kubectl("-n", namespace, "logs", "-l", "job-name=count", "--prefix=false").stdout.split("\n")
    assert sorted(line for line in logs if line) == ["counted 0", "counted 1", "counted 2"], logs


def test_init_containers_share_an_empty_dir(cluster: Cluster, namespace: str) -> None:
    volume = [{"name": "shared", "mountPath": "/shared"}]
    cluster.apply(m.pod(
        namespace, "initialized",
        m.container("main", ["sh", "-c", "cat /shared/steps; sleep 3600"], volumeMounts=volume),
        initContainers=[m.container("first", ["sh", "-c", "echo first > /shared/steps"], volumeMounts=volume),
                        m.container("second", ["sh", "-c", "echo second >> /shared/steps"], volumeMounts=volume)],
        volumes=[{"name": "shared", "emptyDir": {}}]))
    cluster.wait_ready(namespace, "pod/initialized")
    status = cluster.pod(namespace, "initialized")["status"]
    assert [(s["name"], s["state"]["terminated"]["exitCode"], s["state"]["terminated"]["reason"])
            for s in status["initContainerStatuses"]] == [("first", 0, "Completed"), ("second", 0, "Completed")]
    logs = eventually("main's output", lambda: cluster.kubectl("-n", namespace, "logs", "initialized").stdout or None,
                      20)
    assert logs.splitlines() == ["first", "second"]


def test_config_map_as_env_and_files(cluster: Cluster, namespace: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
                   "data": {"color": "blue", "app.conf": "size=3\n"}})
    cluster.apply(m.pod(namespace, "configured", m.container(
        "main", ["sh", "-c", "echo color=$COLOR; cat /etc/app/app.conf; sleep 3600"],
        env=[{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}}],
        volumeMounts=[{"name": "settings", "mountPath": "/etc/app", "readOnly": True}]),
        volumes=[{"name": "settings", "configMap": {"name": "settings"}}]))
    assert output_of(cluster, namespace, "configured", 2) == ["color=blue", "size=3"]


def test_secret_as_env_and_files(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "secret", "generic", "token", "--from-literal=token=s3cr3t")
    cluster.apply(m.pod(namespace, "secretive", m.container(
        "main", ["sh", "-c", "echo env=$TOKEN; echo file=$(cat /secrets/token); stat -L -c %a /secrets/token; "
                 "sleep 3600"],
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "token"}}}],
        volumeMounts=[{"name": "token", "mountPath": "/secrets", "readOnly": True}]),
        volumes=[{"name": "token", "secret": {"secretName": "token", "defaultMode": 0o400}}]))
    assert output_of(cluster, namespace, "secretive", 3) == ["env=s3cr3t", "file=s3cr3t", "400"]


def test_downward_api(cluster: Cluster, namespace: str) -> None:
    field = lambda path: {"fieldRef": {"fieldPath": path}}  # noqa: E731
    cluster.apply(m.pod(namespace, "downward", m.container(
        "main", ["sh", "-c", "echo $POD $NS $NODE $IP; cat /info/labels; echo; "
                 "echo limit=$(cat /info/mem_limit); sleep 3600"],
        env=[{"name": "POD", "valueFrom": field("metadata.name")},
             {"name": "NS", "valueFrom": field("metadata.namespace")},
             {"name": "NODE", "valueFrom": field("spec.nodeName")},
             {"name": "IP", "valueFrom": field("status.podIP")}],
        resources={"limits": {"memory": "64Mi"}},
        volumeMounts=[{"name": "info", "mountPath": "/info"}]),
        labels={"app": "downward", "tier": "test"},
        volumes=[{"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "mem_limit", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                                       "divisor": "1Mi"}}]}}]))
    lines = output_of(cluster, namespace, "downward", 4)
    pod_ip = cluster.pod(namespace, "downward")["status"]["podIP"]
    assert lines == [f"downward {namespace} pycrid-node {pod_ip}", 'app="downward"', 'tier="test"', "limit=64"]


def output_of(cluster: Cluster, namespace: str, pod: str, lines: int) -> list[str]:
    """The pod's first ``lines`` log lines, once it has written them."""
    cluster.wait_ready(namespace, f"pod/{pod}")
    return eventually(f"{lines} lines from {pod}", lambda: (
        out if len(out := cluster.kubectl("-n", namespace, "logs", pod).stdout.splitlines()) >= lines else None),
        20, cluster.diagnosis)[:lines]


def test_a_crashing_container_is_restarted_with_its_exit_code(cluster: Cluster, namespace: str) -> None:
    def restarted_twice() -> dict[str, Any] | None:
        status = cluster.pod(namespace, CRASH)["status"].get("containerStatuses", [{}])[0]
        return status if status.get("restartCount", 0) >= 2 and "terminated" in status.get("lastState", {}) else None
    status = eventually("two restarts of the crashing container", restarted_twice, 90, cluster.diagnosis)
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (3, "Error"), last
    # The newest attempt's own log. (Not `logs --previous`: the kubelet keeps one dead container per
    # container name, and v1.36 reports the newest dead one as the state, not the last state, for as
    # long as the restart backs off, so the last state names a container it has removed.)
    assert cluster.kubectl("-n", namespace, "logs", CRASH).stdout == "crashing\n"
