from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time

import pytest

from runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound
from runtime.image import testimages as ti
from runtime.image.config import ImageConfig
from runtime.image.store import Image, ImageStore
from runtime.image.testing import FollowingUnpacker

HUB = "registry-1.docker.io"
BASE = ti.layer_tar([ti.directory("bin"), ti.file("bin/sh", b"#!", mode=0o755)])


def image(marker: str, config: dict | None = None) -> ti.BuiltImage:
    return ti.build_image([BASE, ti.layer_tar([ti.file("marker", marker.encode())])], config=config)


def test_pull_records_the_image_like_containerd(manager, registry) -> None:
    built = image("v1", {"User": "1000", "Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/w",
                         "Volumes": {"/data": {}}, "ExposedPorts": {"80/tcp": {}},
                         "StopSignal": "SIGQUIT", "Labels": {"a": "b"}})
    registry.push(HUB, "library/busybox", built, "1.36")
    pulled = manager.pull("busybox:1.36")
    assert pulled.id == built.config.digest
    assert pulled.repo_tags == ("docker.io/library/busybox:1.36",)
    assert pulled.repo_digests == (f"docker.io/library/busybox@{built.manifest.digest}",)
    assert pulled.size == sum(len(b.data) for b in (built.manifest, built.config, *built.layers))
    assert (pulled.uid, pulled.username, pulled.pinned) == (1000, "", False)
    c = pulled.config
    assert (c.env, c.cmd, c.working_dir, c.volumes, c.exposed_ports, c.stop_signal, dict(c.labels)) == (
        ("PATH=/bin",), ("sh",), "/w", ("/data",), ("80/tcp",), "SIGQUIT", {"a": "b"})
    assert manager.config_document(pulled.id)["config"]["User"] == "1000"
    top, bottom = manager.lowerdirs(pulled.id)
    assert open(f"{top}/marker").read() == "v1" and os.path.isfile(f"{bottom}/bin/sh")


@pytest.mark.parametrize("user, uid, username", [
    ("", None, ""), ("1000", 1000, ""), ("www-data", None, "www-data"), ("1003:1004", 1003, ""),
    ("app:1004", None, "app"), ("0", 0, "")])
def test_uid_and_username_from_user(manager, registry, user, uid, username) -> None:
    registry.push(HUB, "library/u", image("u", {"User": user}), "latest")
    pulled = manager.pull("u")
    assert (pulled.uid, pulled.username) == (uid, username)


def test_lookups_by_id_tag_and_digest(manager, registry) -> None:
    built = image("x")
    registry.push(HUB, "library/busybox", built, "latest")
    pulled = manager.pull("busybox")
    for ref in (pulled.id, pulled.id.removeprefix("sha256:"), "busybox", "busybox:latest",
                "docker.io/library/busybox:latest", f"busybox@{built.manifest.digest}",
                f"busybox:whatever@{built.manifest.digest}"):
        assert manager.status(ref) == pulled, ref
    assert manager.status("busybox:other") is None
    assert manager.status("sha256:" + "0" * 64) is None
    assert manager.list() == [pulled] and manager.list("busybox") == [pulled] and manager.list("nope") == []
    with pytest.raises(InvalidArgument, match='"Bad Ref"'):
        manager.status("Bad Ref")


def test_digest_pull_records_no_tag(manager, registry) -> None:
    built = image("d")
    registry.push(HUB, "library/busybox", built)
    pulled = manager.pull(f"busybox@{built.manifest.digest}")
    assert pulled.repo_tags == () and pulled.repo_digests == (f"docker.io/library/busybox@{built.manifest.digest}",)


def test_repull_moves_the_tag(manager, registry) -> None:
    old, new = image("old"), image("new")
    registry.push(HUB, "library/app", old, "latest")
    registry.push(HUB, "library/app", old, "stable")
    first = manager.pull("app")
    manager.pull("app:stable")
    registry.push(HUB, "library/app", new, "latest")
    second = manager.pull("app")
    left = manager.status(first.id)
    assert left.repo_tags == ("docker.io/library/app:stable",)  # keeps its other tag and digest
    assert manager.status("app") == second and second.repo_tags == ("docker.io/library/app:latest",)


def test_an_image_whose_only_tag_moves_stays_known_by_its_id(tmp_path) -> None:
    """An imported image (no digest) loses its tag to a newer import: it stays, nameless, with its
    layers (a container may run on them) until RemoveImage takes it."""
    def record(image_id: str) -> Image:
        return Image(image_id, ("docker.io/library/app:1",), (), 1, None, "", False, ImageConfig(),
                     (f"chain-{image_id}",), ())
    store = ImageStore(str(tmp_path))
    store.add(record("sha256:" + "a" * 64))
    store.add(record("sha256:" + "b" * 64))
    old = ImageStore(str(tmp_path)).get("sha256:" + "a" * 64)  # as read back from disk
    assert old is not None and (old.repo_tags, old.repo_digests) == ((), ())
    assert store.find("docker.io/library/app:1").id == "sha256:" + "b" * 64


def test_a_removed_image_is_gone_and_a_moved_tag_leaves_its_digest(manager, registry) -> None:
    old, new = image("old"), image("new")
    registry.push(HUB, "library/app", old, "latest")
    first = manager.pull("app")
    manager.remove(f"app@{old.manifest.digest}")  # removes the whole image, tag included
    assert manager.status(first.id) is None and manager.status("app") is None
    manager.pull("app")
    registry.push(HUB, "library/app", new, "latest")
    manager.pull("app")
    assert manager.status(first.id).repo_tags == ()  # still named by its digest, like containerd


def test_remove_is_whole_idempotent_and_refused_in_use(manager, registry) -> None:
    registry.push(HUB, "library/app", image("a"), "latest")
    registry.push(HUB, "library/app", image("a"), "v1")
    pulled = manager.pull("app")
    manager.pull("app:v1")
    user = "c0ffee" + "0" * 58
    with pytest.raises(FailedPrecondition, match=f'image "app:v1" \\({pulled.id}\\) is in use by container {user}'):
        manager.remove("app:v1", in_use=lambda image_id: user if image_id == pulled.id else None)
    assert manager.status("app:v1") == manager.status("app")  # nothing removed, no name either
    manager.remove("app:v1")
    assert manager.list() == [] and manager.status("app") is None
    manager.remove("app:v1")
    manager.remove(pulled.id)


def test_a_leased_image_is_kept_from_remove_until_the_lease_ends(manager, registry) -> None:
    registry.push(HUB, "library/app", image("a"), "latest")
    pulled = manager.pull("app")
    with manager.leased(["app", "absent:1"]) as found:
        assert found == {"app": pulled}  # an absent image is left out
        with manager.leased([pulled.id]):  # leases of one image count
            pass
        being_created = f'image "app" \\({pulled.id}\\) is in use by a container being created'
        with pytest.raises(FailedPrecondition, match=being_created):
            manager.remove("app")
        assert manager.status("app") == pulled
    manager.remove("app")
    assert manager.status("app") is None


def test_shared_layers_share_snapshots_and_gc_keeps_them(manager, registry) -> None:
    registry.push(HUB, "library/one", image("one"), "latest")
    registry.push(HUB, "library/two", image("two"), "latest")
    one, two = manager.pull("one"), manager.pull("two")
    assert one.chain_ids[0] == two.chain_ids[0] and one.chain_ids[1] != two.chain_ids[1]
    assert manager.lowerdirs("one")[1] == manager.lowerdirs("two")[1]
    used = manager.fs_info()
    manager.remove("one")
    after = manager.fs_info()
    assert after.used_bytes < used.used_bytes and after.inodes_used < used.inodes_used
    assert all(os.path.isdir(d) for d in manager.lowerdirs("two"))
    manager.remove("two")
    root = used.mountpoint
    assert os.listdir(f"{root}/snapshots") == [] and os.listdir(f"{root}/content/blobs/sha256") == []


def test_single_flight(manager, registry) -> None:
    registry.push(HUB, "library/busybox", image("sf"), "latest")
    gate = threading.Event()
    registry.before_blob = lambda digest: gate.wait(5)
    results: list = []
    threads = [threading.Thread(target=lambda r=r: results.append(manager.pull(r)))
               for r in ("busybox", "docker.io/library/busybox:latest", "busybox:latest")]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert len(results) == 3 and len({r.id for r in results}) == 1
    assert sum("/manifests/" in r.url for r in registry.requests) == 1


def test_concurrent_pulls_sharing_a_layer_unpack_it_once(manager, registry, fileops) -> None:
    registry.push(HUB, "library/one", image("one"), "latest")
    registry.push(HUB, "library/two", image("two"), "latest")
    threads = [threading.Thread(target=manager.pull, args=(r,)) for r in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(os.listdir(f"{manager.fs_info().mountpoint}/snapshots")) == 3
    assert len([c for c in fileops.calls if c[0] == "lchown" and c[1].endswith("/bin/sh")]) == 1


def test_the_config_and_the_layers_download_side_by_side(manager, registry) -> None:
    built = image("overlap")
    registry.push(HUB, "library/overlap", built, "latest")
    layers_asked = threading.Barrier(1 + len(built.layers), timeout=5)

    def before_blob(digest: str) -> None:
        # The config is served only once every layer was asked for too: a pull that fetched
        # the config first would break the barrier, and fail.
        layers_asked.wait()

    registry.before_blob = before_blob
    assert manager.pull("overlap").id == built.config.digest


def test_a_stalled_pull_fails_with_deadline_exceeded(make_manager, registry, leftovers) -> None:
    manager = make_manager(stall_timeout=0.2)
    registry.push(HUB, "library/slow", image("slow"), "latest")
    registry.before_blob = lambda digest: time.sleep(0.5)
    with pytest.raises(DeadlineExceeded, match="no progress"):
        manager.pull("slow")
    assert leftovers(manager.fs_info().mountpoint) == [] and manager.list() == []


def test_pinned_is_sticky(manager, registry) -> None:
    registry.push(HUB, "library/pause", image("p"), "3.9")
    assert manager.pull("pause:3.9", pinned=True).pinned
    assert manager.pull("pause:3.9").pinned


def test_state_survives_a_restart_and_unfinished_work_is_dropped(make_manager, registry) -> None:
    registry.push(HUB, "library/busybox", image("r"), "latest")
    first = make_manager()
    pulled = first.pull("busybox")
    root = first.fs_info().mountpoint
    os.makedirs(f"{root}/snapshots/99.tmp/fs")
    open(f"{root}/content/ingest/partial", "w").close()
    second = make_manager()
    assert second.status("busybox") == pulled
    assert second.lowerdirs("busybox") == first.lowerdirs("busybox")
    assert os.listdir(f"{root}/content/ingest") == [] and "99.tmp" not in os.listdir(f"{root}/snapshots")
    assert second.fs_info().used_bytes == first.fs_info().used_bytes


def test_lowerdirs_of_an_absent_image(manager) -> None:
    with pytest.raises(NotFound, match='"busybox"'):
        manager.lowerdirs("busybox")


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_import_oci_layout(manager, tmp_path) -> None:
    built = image("oci")
    desc = built.manifest.descriptor()
    desc["annotations"] = {"io.containerd.image.name": "example.com/app:1.0",
                           "org.opencontainers.image.ref.name": "1.0"}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()}
    files |= {f"blobs/sha256/{b.digest[7:]}": b.data for b in (built.manifest, *built.blobs)}
    (tmp_path / "oci.tar").write_bytes(_tar(files))
    (imported,) = manager.import_archive(str(tmp_path / "oci.tar"))
    assert imported.id == built.config.digest and imported.repo_tags == ("example.com/app:1.0",)
    assert open(f"{manager.lowerdirs('example.com/app:1.0')[0]}/marker").read() == "oci"


def test_import_docker_save(manager, tmp_path) -> None:
    built = image("docker")
    config = built.config.data
    layers = [BASE, ti.layer_tar([ti.file("marker", b"docker")])]
    files = {"abc.json": config, "l1/layer.tar": layers[0], "l2/layer.tar": layers[1],
             "manifest.json": json.dumps([{"Config": "abc.json", "RepoTags": ["busybox:saved"],
                                           "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()}
    (tmp_path / "save.tar").write_bytes(_tar(files))
    (imported,) = manager.import_archive(str(tmp_path / "save.tar"))
    assert imported.id == built.config.digest
    assert manager.status("busybox:saved") == imported
    assert open(f"{manager.lowerdirs('busybox:saved')[0]}/marker").read() == "docker"


def test_import_refuses_other_archives(manager, tmp_path) -> None:
    (tmp_path / "x.tar").write_bytes(_tar({"hello": b"x"}))
    with pytest.raises(InvalidArgument, match="neither an OCI image layout"):
        manager.import_archive(str(tmp_path / "x.tar"))
    with pytest.raises(NotFound):
        manager.import_archive(str(tmp_path / "missing.tar"))


def test_a_followed_layer_is_unpacked_while_it_downloads(make_manager, registry, fileops) -> None:
    unpacker = FollowingUnpacker(fileops)
    manager = make_manager(unpacker=unpacker)
    built = image("followed")
    registry.push(HUB, "library/followed", built, "latest")
    pulled = manager.pull("followed")
    top, bottom = manager.lowerdirs(pulled.id)
    assert open(f"{top}/marker").read() == "followed" and os.path.isfile(f"{bottom}/bin/sh")
    assert sorted(unpacker.followed) == sorted(layer.digest for layer in built.layers)
    assert unpacker.from_file == [] and unpacker.aborted == []


def test_a_followed_layer_whose_blob_is_corrupt_leaves_nothing(make_manager, registry, fileops,
                                                                leftovers) -> None:
    unpacker = FollowingUnpacker(fileops)
    manager = make_manager(unpacker=unpacker)
    built = image("corrupt")
    registry.push(HUB, "library/corrupt", built, "latest")
    # The same size, one byte off (in the gzip trailer): only the blob's digest tells.
    bad = bytearray(built.layers[1].data)
    bad[-1] ^= 1
    registry.put_blob(HUB, "library/corrupt", bytes(bad), digest=built.layers[1].digest)
    with pytest.raises(InvalidArgument, match="has digest"):
        manager.pull("corrupt")
    assert unpacker.aborted == [built.layers[1].digest] and built.layers[1].digest not in unpacker.followed
    # What the other layer left is complete; nothing half-built or half-written stays.
    assert [d for d in leftovers(manager.fs_info().mountpoint) if not d.removeprefix("snapshots/").isdigit()] == []
    assert manager.list() == []


def test_a_followed_layer_leaves_no_blob_and_is_not_fetched_again(make_manager, registry, fileops) -> None:
    unpacker = FollowingUnpacker(fileops)
    manager = make_manager(unpacker=unpacker)
    first, second = image("one"), image("two")  # the same bottom layer
    registry.push(HUB, "library/one", first, "latest")
    registry.push(HUB, "library/two", second, "latest")
    manager.pull("one")
    blobs = os.listdir(f"{manager.fs_info().mountpoint}/content/blobs/sha256")
    assert not {layer.digest[7:] for layer in first.layers} & set(blobs)
    assert first.config.digest[7:] in blobs and first.manifest.digest[7:] in blobs
    manager.pull("two")  # its bottom snapshot is there already: only the top layer is streamed
    assert sorted(unpacker.followed) == sorted([*(layer.digest for layer in first.layers), second.layers[1].digest])


@pytest.mark.parametrize("cut", [1, 4096])
def test_a_followed_layer_cut_short_leaves_nothing(make_manager, registry, fileops, leftovers, cut) -> None:
    unpacker = FollowingUnpacker(fileops)
    manager = make_manager(unpacker=unpacker)
    built = ti.build_image([ti.layer_tar([ti.file("big", os.urandom(3 << 20))])])
    registry.push(HUB, "library/short", built, "latest")
    registry.put_blob(HUB, "library/short", built.layers[0].data[:-cut], digest=built.layers[0].digest)
    with pytest.raises(InvalidArgument, match="descriptor says"):
        manager.pull("short")
    assert unpacker.aborted == [built.layers[0].digest]
    assert leftovers(manager.fs_info().mountpoint) == [] and manager.list() == []


def test_a_followed_layer_refused_early_stops_its_download_and_leaves_nothing(make_manager, registry, fileops,
                                                                               leftovers) -> None:
    # The first entry is refused while most of the blob (more than the pipe holds) is still to come:
    # the download stops when the unpacker stops reading, and the pull fails with its reason.
    unpacker = FollowingUnpacker(fileops)
    manager = make_manager(unpacker=unpacker)
    built = ti.build_image([ti.layer_tar([ti.file("../../escape", b"x"), ti.file("big", os.urandom(4 << 20))])])
    registry.push(HUB, "library/early", built, "latest")
    with pytest.raises(InvalidArgument, match="escapes the layer root"):
        manager.pull("early")
    assert leftovers(manager.fs_info().mountpoint) == [] and manager.list() == []
