"""From an archive to a container that restores: checked, unpacked, its file system changes
applied to the new upper directory, its external mounts found in the new container; a hostile or
unfitting archive refused with nothing left behind."""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.checkpoint import archive, metadata, rootfsdiff
from runtime.checkpoint.restore import attach, is_archive, restored_config, unpacked
from runtime.container.model import ContainerConfig
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.process.initspec import BindMount, InitSpec, Namespaces, Restore
from runtime.store.codec import decode, encode

IMAGE = "sha256:" + "a" * 64


def make_archive(tmp_path: Path, mounts: tuple[str, ...] = ("/etc/hosts", "/proc/keys"),
                 diff: bytes | None = None) -> Path:
    work = tmp_path / "work"
    (work / "checkpoint").mkdir(parents=True)
    for name in ("inventory.img", "pstree.img", "pages-1.img"):
        (work / "checkpoint" / name).write_bytes(b"img")
    upper = tmp_path / "old-upper"
    (upper / "data").mkdir(parents=True)
    (upper / "data" / "count").write_text("41\n")
    os.symlink("count", upper / "data" / "link")
    if diff is None:
        digest = rootfsdiff.write_diff(str(upper), str(work / "rootfs-diff.tar")).digest
    else:
        (work / "rootfs-diff.tar").write_bytes(diff)
        digest = "sha256:" + "0" * 64
    checkpointed = metadata.Checkpointed(
        "c0", "counter", IMAGE, "busybox:1", "ref", 1, 2,
        metadata.Process(("sh", "-c", "count"), ("x",), "/data", (("A", "1"),), stdin=True),
        mounts, ("pipe:[10]", "pipe:[11]", "pipe:[12]"), digest)
    (work / "config.dump").write_bytes(metadata.config_dump(checkpointed))
    (work / "spec.dump").write_bytes(b"{}")
    path = tmp_path / "checkpoint.tar"
    archive.write_archive(str(work), str(path))
    return path


def new_spec(tmp_path: Path, **changes: object) -> InitSpec:
    upper = tmp_path / "container" / "upper"
    upper.mkdir(parents=True)
    spec = InitSpec(id="c1", args=("sh",), env=(), cwd="/", lowerdirs=("/l",), upperdir=str(upper), workdir="/w",
                    rootfs="/r", namespaces=Namespaces(net="/run/s2/netns", ipc="/run/s2/ipcns"),
                    mounts=(BindMount("/run/s2/hosts", "/etc/hosts", is_file=True),),
                    masked_paths=("/proc/keys",))
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_an_archive_becomes_a_container_that_restores(tmp_path: Path) -> None:
    path = make_archive(tmp_path)
    staging = tmp_path / "containers"
    staging.mkdir()
    spec = new_spec(tmp_path)
    with unpacked(str(path), str(staging)) as source:
        restored = attach(source, spec, str(tmp_path / "container"), "/usr/sbin/criu")
    assert os.listdir(staging) == []  # the staging directory is gone
    assert restored.restore == Restore("/usr/sbin/criu", str(tmp_path / "container" / "checkpoint"),
                                       (("/etc/hosts", "/run/s2/hosts"), ("/proc/keys", "/dev/null")),
                                       ("pipe:[10]", "pipe:[11]", "pipe:[12]"))
    assert sorted(os.listdir(tmp_path / "container" / "checkpoint")) == ["inventory.img", "pages-1.img", "pstree.img"]
    assert (Path(spec.upperdir) / "data" / "count").read_text() == "41\n"
    assert os.readlink(Path(spec.upperdir) / "data" / "link") == "count"


def test_the_request_is_the_container_with_the_checkpointed_image_and_process() -> None:
    process = metadata.Process(("sh",), ("-c", "x"), "/w", (("A", "1"),), stdin=True, stdin_once=True)
    c = metadata.Checkpointed("c0", "n", IMAGE, "busybox:1", "ref", 1, 2, process, (), ("", "", ""), IMAGE)
    config = ContainerConfig(name="restored", attempt=2, image="/tmp/c.tar", command=("ignored",), tty=True,
                             log_path="r.log", labels={"a": "b"})
    assert restored_config(config, c) == replace(
        config, image=IMAGE, user_image="busybox:1", command=("sh",), args=("-c", "x"), working_dir="/w",
        envs=(("A", "1"),), stdin=True, stdin_once=True, tty=False)
    assert is_archive("/tmp/c.tar") and not is_archive("busybox:1") and not is_archive(IMAGE)


def test_mounts_the_new_container_lacks_are_a_failed_precondition(tmp_path: Path) -> None:
    path = make_archive(tmp_path, mounts=("/etc/hosts", "/data"))
    (tmp_path / "containers").mkdir()
    spec = new_spec(tmp_path)
    with pytest.raises(FailedPrecondition, match="mounts at /data"), \
            unpacked(str(path), str(tmp_path / "containers")) as source:
        attach(source, spec, str(tmp_path / "container"), "criu")
    assert os.listdir(tmp_path / "containers") == [] and os.listdir(spec.upperdir) == []
    assert not (tmp_path / "container" / "checkpoint").exists()


def hostile_diff() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped-by-diff")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
    return buffer.getvalue()


def test_a_hostile_rootfs_diff_is_refused(tmp_path: Path) -> None:
    path = make_archive(tmp_path, diff=hostile_diff())
    (tmp_path / "containers").mkdir()
    spec = new_spec(tmp_path)
    with pytest.raises(InvalidArgument, match="rootfs-diff.tar"), \
            unpacked(str(path), str(tmp_path / "containers")) as source:
        attach(source, spec, str(tmp_path / "container"), "criu")
    assert not (tmp_path / "escaped-by-diff").exists() and not (tmp_path / "container" / "escaped-by-diff").exists()
    assert os.listdir(tmp_path / "containers") == []


def test_a_diff_that_is_not_the_checkpointed_one_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("data")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    path = make_archive(tmp_path, diff=buffer.getvalue())
    (tmp_path / "containers").mkdir()
    with pytest.raises(InvalidArgument, match="does not match"), \
            unpacked(str(path), str(tmp_path / "containers")) as source:
        attach(source, new_spec(tmp_path), str(tmp_path / "container"), "criu")


def test_an_archive_of_another_kind_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "checkpoint").mkdir(parents=True)
    for name in ("inventory.img", "pstree.img"):
        (work / "checkpoint" / name).write_bytes(b"img")
    for name in ("rootfs-diff.tar", "spec.dump"):
        (work / name).write_bytes(b"")
    (work / "config.dump").write_bytes(b'{"id": "x", "name": "from CRI-O"}')
    archive.write_archive(str(work), str(tmp_path / "crio.tar"))
    (tmp_path / "containers").mkdir()
    with pytest.raises(InvalidArgument, match="not a pycrid checkpoint"), \
            unpacked(str(tmp_path / "crio.tar"), str(tmp_path / "containers")):
        pass
    assert os.listdir(tmp_path / "containers") == []


def test_a_restoring_spec_survives_the_record_store_and_the_fork_server_socket(tmp_path: Path) -> None:
    spec = replace(new_spec(tmp_path), restore=Restore("/usr/local/sbin/criu", "/c/checkpoint",
                                                      (("/etc/hosts", "/run/s2/hosts"),), ("", "pipe:[1]", "pipe:[2]")))
    assert decode(InitSpec, json_roundtrip(encode(spec))) == spec
    assert InitSpec.from_dict(json_roundtrip(spec.to_dict())) == spec


def json_roundtrip(data: object) -> dict:
    return json.loads(json.dumps(data))
