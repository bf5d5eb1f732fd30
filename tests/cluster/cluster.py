"""`up` and `down` of the one-node cluster (hack/cluster). Both are idempotent: `up` starts whatever
is not running and waits until all of it answers, so a rerun on a running cluster takes a few
seconds, and after a crash of one component (the tests SIGKILL pycrid) it starts just that one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from runtime.cgroups.cgroupfs import subtree_pids
from runtime.linux import proc
from tests.cluster import addons, control_plane, daemons, health, netns, node, pki, prometheus
from tests.cluster.kube import kubectl
from tests.cluster.layout import NODE_NAME, Layout
from tests.cluster.runtimes import RUNTIMES, Runtime
from tests.e2e.daemon import REPO
from tests.kubelet import node_cgroups

HACK = REPO / "hack"
# The images the cluster's pods use, pushed once per build of them (hack/images.sh).
IMAGES = ("library/busybox:1", "pause:3.10", "coredns/coredns:v1.14.2", "metrics-server/metrics-server:v0.8.1")
IMAGES_STAMP = Path(os.environ.get("PYCRID_CACHE", "/var/cache/pycrid-dev")) / "images" / "stamp"
# The kubelet's mount namespace overlays these (tests/kubelet/confinement.py): its root dir must not
# be below them, or its volume mounts would land in the overlay, out of pycrid's sight.
OVERLAID = ("/var/lib/", "/var/log/")
# Stopped in this order by down (the kubelet first, so it restarts nothing meanwhile).
CONTROL_PLANE = ("kube-proxy", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


def runtime_of(layout: Layout, requested: str | None) -> Runtime:
    """The cluster's runtime: fixed by its first `up` (``requested``, default pycrid)."""
    saved = layout.path("runtime")
    name = saved.read_text().strip() if saved.exists() else None
    if requested and name and requested != name:
        raise SystemExit(f"the cluster in {layout.base} runs on {name}; `down --purge` it first")
    name = name or requested or "pycrid"
    if name not in RUNTIMES:
        raise SystemExit(f"unknown runtime {name!r}: one of {', '.join(RUNTIMES)}")
    return Runtime(name, layout)


def kubelet_gates_of(layout: Layout, requested: dict[str, bool] | None) -> dict[str, bool]:
    """The kubelet's extra feature gates: the last ones `up` was given (kept in the state dir)."""
    saved = layout.path("kubelet-feature-gates.json")
    if requested is not None:
        saved.write_text(json.dumps(requested) + "\n")
    gates = json.loads(saved.read_text()) if saved.exists() else {}
    assert isinstance(gates, dict)
    return gates


def up(layout: Layout, requested_runtime: str | None, say: Callable[[str], None],
       kubelet_gates: dict[str, bool] | None = None) -> None:
    """``kubelet_gates``: extra feature gates for the kubelet, kept for later `up`s; None keeps
    the last ones, {} drops them. A kubelet running with other gates is restarted."""
    if any(f"{layout.base}/".startswith(d) for d in OVERLAID):
        raise SystemExit(f"{layout.base}: the state dir must not be under {' or '.join(OVERLAID)}")
    layout.base.mkdir(parents=True, exist_ok=True)
    runtime = runtime_of(layout, requested_runtime)
    layout.path("runtime").write_text(runtime.name + "\n")
    for script in ("kube/build.sh", "images.sh"):  # both return at once when everything is built
        subprocess.run([str(HACK / script), *(["build"] if script == "images.sh" else [])], check=True,
                       stdout=subprocess.DEVNULL)
    netns.ensure(layout)
    write_env(layout)
    netns.enter(layout)  # everything below, and every process started from here, runs in it
    pki.ensure(layout)
    start_registry(layout, say)
    control_plane.start(layout, say)
    kubectl(layout, "apply", "-f", "-", input=json.dumps(addons.all_manifests()))
    runtime.start(say)
    node.start_kubelet(layout, runtime.endpoint, kubelet_gates_of(layout, kubelet_gates), say)
    say(f"waiting for node {NODE_NAME} to be Ready")
    health.wait_until(layout, "kubelet", lambda: kubectl(layout, "get", f"node/{NODE_NAME}", check=False).returncode
                      == 0, 60)  # `kubectl wait` fails at once on a node not registered yet
    kubectl(layout, "wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=120s")
    node.start_kube_proxy(layout, say)
    say("waiting for CoreDNS and metrics-server")
    kubectl(layout, "-n", "kube-system", "wait", "--for=condition=Available", "deployment/coredns",
            "deployment/metrics-server", "--timeout=180s")
    prometheus.start(layout, say)
    say(f"up: node {NODE_NAME} on {runtime.name}; state and network namespace in {layout.base}")


def start_registry(layout: Layout, say: Callable[[str], None]) -> None:
    """The cluster's registry (hack/registry.sh) with the images pushed; pushed again only after
    hack/images.sh rebuilt them."""
    directory = layout.path("registry")
    subprocess.run([str(HACK / "registry.sh"), "start", str(directory), layout.registry.split(":")[1]],
                   check=True, stdout=subprocess.DEVNULL)
    built = (IMAGES_STAMP.read_text() if IMAGES_STAMP.exists() else "") + " ".join(IMAGES)
    pushed = directory / "pushed"
    if not pushed.exists() or pushed.read_text() != built:
        say("pushing the images to the cluster's registry")
        subprocess.run([str(HACK / "images.sh"), "push", layout.registry, *IMAGES], check=True,
                       stdout=subprocess.DEVNULL)
        pushed.write_text(built)


def write_env(layout: Layout) -> None:
    """For hack/cluster/kubectl and hack/cluster/exec (sourced by bash)."""
    layout.path("env").write_text(f"NETNS={layout.netns_path}\nKUBECONFIG={layout.kubeconfig('admin')}\n")


def down(layout: Layout, purge: bool, say: Callable[[str], None]) -> None:
    """Stops everything and removes the pods, the namespace, the kubelet's mounts and the cgroups;
    the state dir stays (certificates, etcd, images: the next `up` is quick) unless ``purge``."""
    if netns.exists(layout):
        netns.enter(layout)
    say("stopping the kubelet")
    daemons.stop(layout, "kubelet", timeout=30)
    runtime_of(layout, None).stop(say)
    for name in (*CONTROL_PLANE, "prometheus"):
        say(f"stopping {name}")
        # The apiserver, once it stopped listening, can sit out its whole shutdown timeout; it holds
        # no state of its own (etcd does), so it gets a few seconds.
        daemons.stop(layout, name, timeout=5 if name == "kube-apiserver" else 20)
    subprocess.run([str(HACK / "registry.sh"), "stop", str(layout.path("registry"))], check=True)
    node.unmount_kubelet_root(layout)
    remove_cgroups(layout, say)
    netns.remove(layout)
    if purge:
        for mount in sorted((m for m in proc.mount_points() if m.startswith(f"{layout.base}/")), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(layout.base, ignore_errors=True)
    say(f"down: {layout.base}{' removed' if purge else ' kept'}")


def remove_cgroups(layout: Layout, say: Callable[[str], None]) -> None:
    """The kubelet's cgroup root; a process still in it (a runtime that failed to stop a container)
    is killed first, and said."""
    for hierarchy in node_cgroups.mounted_hierarchies():
        left = subtree_pids(os.path.join(hierarchy, layout.cgroup_root.lstrip("/")))
        for pid in left:
            say(f"killing process {pid} left in {hierarchy}{layout.cgroup_root}")
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    node_cgroups.remove_root(layout.cgroup_root)
