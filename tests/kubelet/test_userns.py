"""A real kubelet (v1.36, standalone) runs a hostUsers: false pod on pycrid: it picks the pod a
host range and sends it as the pod's user namespace and as every volume's id mappings; inside, the
container is root over its own files and the kubelet's, and on the host it is that unprivileged
range."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from tests.e2e.daemon import Daemon, crictl
from tests.kubelet.pods import pod_in, wait_for
from tests.kubelet.pods import running as pods_running
from tests.kubelet.standalone import StandaloneKubelet

SCRIPT = ("cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox /etc/hosts /scratch; "
          "echo x > /scratch/by-root && stat -c %u /scratch/by-root; trap 'exit 0' TERM; sleep 3600 & wait")


def userns_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"hostUsers": False, "terminationGracePeriodSeconds": 5,
                     "volumes": [{"name": "scratch", "emptyDir": {}}],
                     "containers": [{"name": "app", "image": "busybox:1", "command": ["sh", "-c", SCRIPT],
                                     "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]}}


def test_a_host_users_false_pod(kubelet: StandaloneKubelet, pycrid: Daemon) -> None:
    name = f"userns-{secrets.token_hex(3)}"
    pod_name = kubelet.static_pod_name(name)
    manifest = kubelet.write_manifest(userns_pod(name))
    pod = wait_for("the pod running", lambda: pods_running(pod_in(kubelet.api.json("/pods"), pod_name), ("app",)),
                   60, kubelet.log_tail)
    uid = pod["metadata"]["uid"]
    label = f"io.kubernetes.pod.uid={uid}"
    (sandbox,) = json.loads(crictl(pycrid, "pods", "--label", label, "-o", "json").stdout)["items"]
    options = json.loads(crictl(pycrid, "inspectp", sandbox["id"]).stdout)["status"]["linux"]["namespaces"]["options"]
    userns = options["usernsOptions"]
    (uids,) = userns["uids"]
    host = int(uids["hostId"])
    assert userns["mode"] == "POD" and host >= 65536 and int(uids["length"]) >= 65536, userns

    def lines() -> list[str] | None:
        out = kubelet.api.text(f"/containerLogs/default/{pod_name}/app").split()
        return out if len(out) >= 8 else None
    out = wait_for("the container's report", lines, 20, kubelet.log_tail)
    assert out[:3] == ["0", str(host), str(uids["length"])] and out[3] == "0", out
    assert out[4:8] == ["0", "0", "0", "0"], out  # the image's, the kubelet's /etc/hosts, the emptyDir: root's
    (ctr,) = json.loads(crictl(pycrid, "ps", "--label", label, "-o", "json").stdout)["containers"]
    pid = json.loads(crictl(pycrid, "inspect", ctr["id"]).stdout)["info"]["pid"]
    assert f"Uid:\t{host}\t{host}\t{host}\t{host}" in Path(f"/proc/{pid}/status").read_text()
    # The kubelet's /run goes through ExecSync: the command joins the pod as its root too.
    assert kubelet.api.post(f"/run/default/{pod_name}/app?cmd=id%20-u") == (200, b"0\n")

    manifest.unlink()
    wait_for("the pod gone from the kubelet",
             lambda: True if pod_in(kubelet.api.json("/pods"), pod_name) is None else None, 30, kubelet.log_tail)
