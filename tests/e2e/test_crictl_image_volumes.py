"""Image volumes (Kubernetes' `volumes: - image:`, CRI Mount.image) through crictl, as the kubelet
drives them: the image is pulled first and named by its id; the container sees it read-only; it
cannot be removed while a container uses it, and can once that container is gone; nothing of it is
ever mounted on the host, before or after an agent restart."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e import leaks
from tests.e2e.cgroupfiles import process_cgroup
from tests.e2e.daemon import Daemon, crictl, start
from tests.e2e.workloads import container_config, pod_config, unique

VOLUME_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-2:latest"  # busybox + /test-2 holding "test-2"


def write(path: Path, doc: dict) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def image_id(daemon: Daemon, ref: str) -> str:
    return json.loads(crictl(daemon, "inspecti", ref).stdout)["status"]["id"]


def image_fs_used(daemon: Daemon) -> int:
    info = json.loads(crictl(daemon, "imagefsinfo", "-o", "json").stdout)["status"]
    return int(info["imageFilesystems"][0]["usedBytes"]["value"])


def snapshot_dir(daemon: Daemon, ref: str) -> str:
    """Where pycrid unpacked the image's top layer (runtime/image/snapshots.py)."""
    top = json.loads(crictl(daemon, "inspecti", ref).stdout)["info"]["chainIDs"][-1]
    for record in (daemon.root / "images" / "snapshots").glob("*/snapshot.json"):
        if json.loads(record.read_text())["chain_id"] == top:
            return str(record.parent / "fs")
    raise AssertionError(f"no snapshot of {ref}'s top layer {top}")


def mounted_anywhere(text: str) -> list[str]:
    """The processes on the machine whose mount table shows ``text``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text in Path(f"/proc/{pid}/mountinfo").read_text():
                found.append(pid)
        except OSError:
            continue
    return found


def test_an_image_volume_from_create_to_removal_across_an_agent_restart(registry: str, tmp_path: Path) -> None:
    daemon = start(tmp_path / "pycrid", registry)
    try:
        crictl(daemon, "pull", "busybox:1")
        crictl(daemon, "pull", VOLUME_IMAGE)
        volume_id = image_id(daemon, VOLUME_IMAGE)
        marker_layer = snapshot_dir(daemon, VOLUME_IMAGE)  # the volume image's own, not busybox's
        pod_path = write(tmp_path / "pod.json", pod_config(unique("imagevol"), tmp_path / "logs"))
        pod_id = crictl(daemon, "runp", pod_path).stdout.strip()

        def create(name: str, mounts: list[dict], check: bool = True):
            config = container_config(name, ["sleep", "3600"], mounts=mounts)
            return crictl(daemon, "create", pod_id, write(tmp_path / f"{name}.json", config), pod_path, check=check)

        # The kubelet names the image by the id PullImage gave it; crictl users may use a tag.
        volumes = [{"container_path": "/vol", "image": {"image": volume_id}, "readonly": True},
                   {"container_path": "/etc-of-image", "image": {"image": VOLUME_IMAGE}, "readonly": True,
                    "image_sub_path": "etc"}]
        running = create("reader", volumes).stdout.strip()
        crictl(daemon, "start", running)
        later = create("later", volumes[:1]).stdout.strip()  # started only after the restart

        assert crictl(daemon, "exec", running, "cat", "/vol/test-2").stdout == "test-2\n"
        assert "passwd" in crictl(daemon, "exec", running, "ls", "/etc-of-image").stdout.split()
        write_try = crictl(daemon, "exec", running, "sh", "-c", "echo x > /vol/new", check=False)
        assert write_try.returncode != 0 and "Read-only file system" in write_try.stderr, write_try

        status = json.loads(crictl(daemon, "inspect", running).stdout)["status"]
        by_path = {m["containerPath"]: m for m in status["mounts"]}
        assert by_path["/vol"]["image"]["image"] == volume_id  # as given: the kubelet's image GC matches ids
        assert by_path["/etc-of-image"]["image"]["image"] == VOLUME_IMAGE
        assert by_path["/etc-of-image"]["imageSubPath"] == "etc"
        assert by_path["/vol"]["image"]["imageRef"].startswith("gcr.io/k8s-staging-cri-tools/test-image-2@sha256:")

        refused = crictl(daemon, "rmi", VOLUME_IMAGE, check=False)
        assert refused.returncode != 0 and "FailedPrecondition" in refused.stderr, refused
        assert volume_id in refused.stderr and "in use by container" in refused.stderr, refused
        assert image_id(daemon, VOLUME_IMAGE) == volume_id

        # Never on the host: the only mounts under pycrid's dirs are the pod's (pinned namespaces,
        # /dev/shm), and only the containers' own mount tables show the image's layers: the running
        # one's, and that of the created one's init, which create set up and holds until its start.
        assert all("/sandboxes/" in m for m in leaks.mounts_under(str(daemon.root.parent)))
        pid = json.loads(crictl(daemon, "inspect", running).stdout)["info"]["pid"]
        shown = mounted_anywhere(marker_layer)
        assert str(pid) in shown and len(shown) == 2, shown
        held = next(int(p) for p in shown if p != str(pid))
        assert later in str(process_cgroup(held, "memory")), "a process outside the created container shows the volume"

        assert daemon.stop() == 0  # the agent goes; the container stays, with its volume
        daemon = start(tmp_path / "pycrid", registry)

        assert crictl(daemon, "exec", running, "cat", "/vol/test-2").stdout == "test-2\n"
        assert crictl(daemon, "rmi", VOLUME_IMAGE, check=False).returncode != 0
        crictl(daemon, "start", later)  # from the record the new agent read back
        assert crictl(daemon, "exec", later, "cat", "/vol/test-2").stdout == "test-2\n"
        crictl(daemon, "rm", "-f", later)
        assert crictl(daemon, "rmi", VOLUME_IMAGE, check=False).returncode != 0  # "reader" still uses it
        crictl(daemon, "rm", "-f", running)
        assert mounted_anywhere(marker_layer) == [], "the image volume outlived its container"
        used = image_fs_used(daemon)
        crictl(daemon, "rmi", VOLUME_IMAGE)
        assert crictl(daemon, "inspecti", VOLUME_IMAGE, check=False).returncode != 0
        assert image_fs_used(daemon) < used  # it was counted in the image filesystem until it went
    finally:
        left, _ = leaks.remove_everything(daemon)
    assert left.empty(), f"pycrid left behind: {left}"


def test_image_volume_refusals(registry: str, tmp_path: Path) -> None:
    daemon = start(tmp_path / "pycrid", registry)
    try:
        crictl(daemon, "pull", "busybox:1")
        pod_path = write(tmp_path / "pod.json", pod_config(unique("imagevol-no"), tmp_path / "logs"))
        pod_id = crictl(daemon, "runp", pod_path).stdout.strip()

        def refusal(mount: dict) -> str:
            config = container_config("c", ["true"], mounts=[{"container_path": "/vol", "readonly": True, **mount}])
            result = crictl(daemon, "create", pod_id, write(tmp_path / "c.json", config), pod_path, check=False)
            assert result.returncode != 0, result
            return result.stderr

        unknown = "sha256:" + "0" * 64
        message = refusal({"image": {"image": unknown}})
        assert "NotFound" in message and unknown in message and "'c'" in message, message
        message = refusal({"image": {"image": "busybox:1"}, "image_sub_path": "no/such/dir"})
        assert "InvalidArgument" in message, message
        assert "container 'c': image volume at /vol: sub path 'no/such/dir': no such file or directory" in message
        message = refusal({"image": {"image": "busybox:1"}, "image_sub_path": "bin/sh"})
        assert "is not a directory" in message, message
        for escape in ("../..", "/etc"):
            assert "InvalidArgument" in refusal({"image": {"image": "busybox:1"}, "image_sub_path": escape})
        assert "readonly must be set" in refusal({"image": {"image": "busybox:1"}, "readonly": False})
        assert crictl(daemon, "ps", "-a", "-q").stdout.strip() == ""  # no half-made container stays
    finally:
        left, _ = leaks.remove_everything(daemon)
    assert left.empty(), f"pycrid left behind: {left}"
