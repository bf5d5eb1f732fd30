"""Device access control through the CRI, on whichever cgroup version the node runs (v1's
devices.allow, v2's device program): an unprivileged container that makes a node of a device
outside its list cannot open it, a privileged one can, and a device of the container's CRI list
opens with the permissions given there."""
from __future__ import annotations

import json
import time

from tests.e2e.daemon import TIMEOUT_SCALE, Daemon, crictl
from tests.e2e.workloads import CONTAINER_NS, Pods, container_config, pod_config, unique

# A block device outside every container's list that root can open without any capability: the
# first loop device (an unbound one opens, and reads as empty).
LOOP = (7, 0, "/dev/loop0")


def run_to_exit(daemon: Daemon, pods: Pods, pod: tuple[str, str], config: dict) -> list[str]:
    """Starts the container, waits for it to exit and returns its output lines."""
    cid = pods.create(*pod, config)
    deadline = time.monotonic() + 30 * TIMEOUT_SCALE
    while json.loads(crictl(daemon, "inspect", cid).stdout)["status"]["state"] != "CONTAINER_EXITED":
        assert time.monotonic() < deadline, f"container {cid} did not exit"
        time.sleep(0.2)
    out = crictl(daemon, "logs", cid)
    return (out.stdout + out.stderr).splitlines()


def privileged(security: dict) -> dict:
    return {"security_context": {**security, "privileged": True}}


def test_device_nodes_open_only_as_the_container_is_allowed(pycrid: Daemon, pods: Pods) -> None:
    major, minor, path = LOOP
    made = f"mknod /tmp/loop b {major} {minor} && head -c 1 /tmp/loop >/dev/null; echo made=$?"
    mapped = "head -c 1 /dev/xloop >/dev/null; echo read=$?; echo x >/dev/xloop; echo write=$?"
    ns = {"namespace_options": {"pid": CONTAINER_NS}}

    name = unique("devices")
    pod = pods.run(pod_config(name, pods.log_dir))
    lines = run_to_exit(pycrid, pods, pod, container_config("made", ["sh", "-c", made]))
    assert "made=1" in lines and any("Operation not permitted" in line for line in lines), lines
    # Its CRI device, read-only: reading works, writing is refused by the cgroup (and the node made
    # by pycrid is the host's device, not a copy).
    lines = run_to_exit(pycrid, pods, pod, container_config(
        "mapped", ["sh", "-c", mapped],
        devices=[{"host_path": path, "container_path": "/dev/xloop", "permissions": "r"}]))
    assert "read=0" in lines and "write=1" in lines, lines

    name = unique("devices-priv")
    pod = pods.run(pod_config(name, pods.log_dir, linux=privileged(ns)))
    lines = run_to_exit(pycrid, pods, pod, container_config("made-priv", ["sh", "-c", made], linux=privileged(ns)))
    assert "made=0" in lines and not any("not permitted" in line for line in lines), lines
