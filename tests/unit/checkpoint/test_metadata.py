"""config.dump and spec.dump: what pycrid writes, what checkpointctl reads, and what a restore
accepts back."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from runtime.checkpoint import metadata
from runtime.errors import InvalidArgument
from runtime.process.initspec import HOST, BindMount, InitSpec, Namespaces
from runtime.sandbox.model import SandboxConfig

IMAGE = "sha256:" + "a" * 64
CHECKPOINTED = metadata.Checkpointed(
    "c1", "counter", IMAGE, "busybox:1", "docker.io/library/busybox@sha256:" + "b" * 64,
    1_700_000_000_123_456_789, 1_700_000_100_000_000_000,
    metadata.Process(("sh", "-c", "loop"), (), "/", (("A", "1"),)),
    ("/etc/hosts", "/proc/keys"), ("file[18:3]", "pipe:[123]", "pipe:[124]"), "sha256:" + "c" * 64)


def test_config_dump_has_checkpointctls_fields_and_reads_back() -> None:
    raw = metadata.config_dump(CHECKPOINTED)
    document = json.loads(raw)
    assert {k: document[k] for k in ("id", "name", "rootfsImage", "rootfsImageName", "runtime")} == {
        "id": "c1", "name": "counter", "rootfsImage": IMAGE, "rootfsImageName": "busybox:1", "runtime": "pycrid"}
    assert document["createdTime"] == "2023-11-14T22:13:20.123456789Z"  # Go's RFC 3339 with nanoseconds
    assert document["checkpointedTime"] == "2023-11-14T22:15:00Z"
    assert metadata.parse(raw) == CHECKPOINTED


def dumped(**changes: object) -> bytes:
    document = json.loads(metadata.config_dump(CHECKPOINTED))
    document["pycrid"].update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(("raw", "words"), [
    (b"not json", "not a pycrid checkpoint"),
    (b"[]", "not a pycrid checkpoint"),
    (b'{"id": "c1"}', "not a pycrid checkpoint"),
    (dumped(version=2), "version 2"),
    (dumped(image_id="busybox"), "is not sha256"),
    (dumped(image_id="sha256:../../etc"), "is not sha256"),
    (dumped(rootfs_diff_digest="md5:abc"), "digest"),
    (dumped(stdio=["pipe:[1]", "pipe:[2]"]), "three CRIU file keys"),
    (dumped(stdio=["pipe:[1]", "pipe:[2]", "fd[3]:x"]), "three CRIU file keys"),
    (dumped(mounts=["/data:/etc"]), "not clean container paths"),
    (dumped(mounts=["/data/../../etc"]), "not clean container paths"),
    (dumped(mounts=["relative"]), "not clean container paths"),
    (dumped(mounts="/data"), "not a pycrid checkpoint"),
    (dumped(created_at="yesterday"), "not a pycrid checkpoint"),
    (dumped(surprise=1), "unknown fields"),
])
def test_anything_else_is_refused(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        metadata.parse(raw)


def test_spec_dump_is_an_oci_spec_with_the_cri_annotations() -> None:
    spec = InitSpec(id="c1", args=("sh", "-c", "loop"), env=("A=1",), cwd="", lowerdirs=("/l",), upperdir="/u",
                    workdir="/w", rootfs="/r", hostname="h",
                    namespaces=Namespaces(net="/run/s/netns", ipc="/run/s/ipcns", uts=HOST),
                    mounts=(BindMount("/host/data", "/data", readonly=True),), cgroup="/pycrid/c1")
    annotations = metadata.cri_annotations("counter", "s1", SandboxConfig(name="pod", uid="u1", namespace="ns"),
                                           "busybox:1")
    document = json.loads(metadata.spec_dump(replace(spec, tty=True), annotations))
    assert document["process"]["args"] == ["sh", "-c", "loop"] and document["process"]["terminal"] is True
    assert document["process"]["cwd"] == "/"
    assert document["mounts"] == [{"destination": "/data", "type": "bind", "source": "/host/data",
                                   "options": ["rbind", "ro", "rprivate"]}]
    assert document["linux"]["namespaces"] == [{"type": "pid"}, {"type": "mount"},
                                               {"type": "network", "path": "/run/s/netns"},
                                               {"type": "ipc", "path": "/run/s/ipcns"}]
    assert document["annotations"] == {
        "io.container.manager": "pycrid", "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "counter", "io.kubernetes.cri.sandbox-id": "s1",
        "io.kubernetes.cri.sandbox-name": "pod", "io.kubernetes.cri.sandbox-namespace": "ns",
        "io.kubernetes.cri.sandbox-uid": "u1", "io.kubernetes.cri.image-name": "busybox:1"}
