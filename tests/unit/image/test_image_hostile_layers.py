"""DESIGN §7: every hostile layer class fails the pull closed, naming the layer and the entry, and
leaves nothing behind: no new snapshot, ingest file or image record, nothing outside the root."""
from __future__ import annotations

import json
import os
import tarfile

import pytest

from runtime.errors import InvalidArgument, ResourceExhausted
from runtime.image import testimages as ti
from runtime.image.manifest import OCI_MANIFEST
from runtime.image.testing import FollowingUnpacker

HUB = "registry-1.docker.io"


@pytest.fixture(params=["stored", "streamed"])
def manager(request, make_manager, fileops):
    """Each layer either stored, then unpacked from its blob, or streamed into its unpacker as it
    downloads (as the agent's unpack children get every layer but a tiny one)."""
    if request.param == "stored":
        return make_manager()
    return make_manager(unpacker=FollowingUnpacker(fileops))


@pytest.fixture
def outside(tmp_path) -> str:
    path = tmp_path / "outside"
    path.mkdir()
    return str(path)


@pytest.fixture
def pull_hostile(manager, registry, leftovers):
    return lambda layers: _pull_hostile(manager, registry, leftovers, layers)


def _pull_hostile(manager, registry, leftovers, layers: list[list]) -> InvalidArgument:
    image = ti.build_image([ti.layer_tar(entries) for entries in layers])
    registry.push(HUB, "library/evil", image, "latest")
    before = (leftovers(manager.fs_info().mountpoint), manager.list())
    with pytest.raises(InvalidArgument) as e:
        manager.pull("evil")
    assert (leftovers(manager.fs_info().mountpoint), manager.list()) == before
    assert image.layers[-1].digest in str(e.value)
    return e.value


def test_dotdot_traversal(manager, registry, pull_hostile, outside) -> None:
    rel = os.path.relpath(f"{outside}/pwned", "/")
    err = pull_hostile([[ti.file("ok"), ti.file("../" * 40 + rel, b"x")]])
    assert "escapes the layer root" in str(err) and "pwned" in str(err)
    assert os.listdir(outside) == []


def test_dotdot_inside_the_root_is_cleaned_not_refused(manager, registry) -> None:
    image = ti.build_image([ti.layer_tar([ti.file("a/../b", b"x")])])
    registry.push(HUB, "library/fine", image, "latest")
    (lower,) = manager.lowerdirs(manager.pull("fine").id)
    assert os.listdir(lower) == ["b"]


def test_absolute_path_stays_in_the_snapshot(manager, registry, outside) -> None:
    image = ti.build_image([ti.layer_tar([ti.file(f"{outside}/abs", b"x")])])
    registry.push(HUB, "library/abs", image, "latest")
    (lower,) = manager.lowerdirs(manager.pull("abs").id)
    assert os.listdir(outside) == []
    assert os.path.isfile(lower + f"{outside}/abs")


def test_absolute_path_with_dotdot_escape(manager, registry, pull_hostile, outside) -> None:
    pull_hostile([[ti.file("/../../" + outside.lstrip("/") + "/x")]])
    assert os.listdir(outside) == []


def test_symlink_parent_escape(manager, registry, pull_hostile, outside) -> None:
    err = pull_hostile([[ti.symlink("evil", outside), ti.file("evil/pwned", b"x")]])
    assert "symlink" in str(err) and "evil/pwned" in str(err)
    assert os.listdir(outside) == []


def test_symlink_parent_escape_through_relative_link_and_deeper_dir(manager, registry, pull_hostile, outside) -> None:
    err = pull_hostile([[ti.directory("a"), ti.symlink("a/b", "../../../../.."),
                                            ti.directory("a/b/tmp"), ti.file("a/b/tmp/x")]])
    assert "symlink" in str(err)


def test_symlink_parent_in_a_whiteout(manager, registry, pull_hostile, outside) -> None:
    open(f"{outside}/victim", "w").close()
    pull_hostile([[ti.symlink("evil", outside), ti.file("evil/.wh.victim")]])
    assert os.listdir(outside) == ["victim"]


def test_hardlink_escape(manager, registry, pull_hostile, outside) -> None:
    open(f"{outside}/secret", "w").close()
    err = pull_hostile([[ti.hardlink("stolen", "../" * 40 + outside.lstrip("/") + "/secret")]])
    assert "escapes" in str(err)
    assert os.stat(f"{outside}/secret").st_nlink == 1


def test_hardlink_through_a_symlinked_directory(manager, registry, pull_hostile, outside) -> None:
    open(f"{outside}/secret", "w").close()
    err = pull_hostile([[ti.symlink("d", outside), ti.hardlink("stolen", "d/secret")]])
    assert "symlink" in str(err)
    assert os.stat(f"{outside}/secret").st_nlink == 1


def test_hardlink_to_a_file_of_another_layer(manager, registry, pull_hostile) -> None:
    err = pull_hostile([[ti.file("lower")], [ti.hardlink("upper", "lower")]])
    assert "not in the layer" in str(err) or "does not exist" in str(err)


def test_whiteout_escaping_its_directory(manager, registry, pull_hostile, outside) -> None:
    err = pull_hostile([[ti.file("../.wh.x")]])
    assert "escapes" in str(err)
    pull_hostile([[ti.directory("d"), ti.file("d/.wh..")]])


def test_device_nodes_are_created_inside_only(manager, registry, pull_hostile, fileops, outside) -> None:
    image = ti.build_image([ti.layer_tar([ti.device("dev/kmsg", tarfile.CHRTYPE, 1, 11)])])
    registry.push(HUB, "library/dev", image, "latest")
    (lower,) = manager.lowerdirs(manager.pull("dev").id)
    (path,) = fileops.of("mknod")
    assert path.startswith(os.path.dirname(lower)) and path.endswith("/fs/dev/kmsg")
    pull_hostile([[ti.device("../" * 40 + outside.lstrip("/") + "/null", tarfile.CHRTYPE, 1, 3)]])


def test_diff_id_lie(manager, registry, leftovers) -> None:
    tar = ti.layer_tar([ti.file("a", b"x")])
    image = ti.build_image([tar], diff_ids=["sha256:" + "0" * 64])
    registry.push(HUB, "library/liar", image, "latest")
    with pytest.raises(InvalidArgument, match="does not match diff ID"):
        manager.pull("liar")
    assert leftovers(manager.fs_info().mountpoint) == []


def test_oversize_manifest(manager, registry, leftovers) -> None:
    image = ti.build_image([ti.layer_tar([ti.file("a")])])
    doc = json.loads(image.manifest.data)
    doc["annotations"] = {"pad": "x" * (4 << 20)}
    registry.put_manifest(HUB, "library/big", ti.Blob(OCI_MANIFEST, json.dumps(doc).encode()), "latest")
    with pytest.raises(ResourceExhausted, match="manifest"):
        manager.pull("big")
    assert leftovers(manager.fs_info().mountpoint) == [] and manager.list() == []


def test_layer_digest_mismatch_stores_nothing(manager, registry, leftovers) -> None:
    image = ti.build_image([ti.layer_tar([ti.file("a", b"good")])])
    registry.push(HUB, "library/swap", image, "latest")
    bad = ti.compress(ti.layer_tar([ti.file("a", b"evil")]), "gzip")
    registry.put_blob(HUB, "library/swap", bad, digest=image.layers[0].digest)
    with pytest.raises(InvalidArgument, match=f"content blob {image.layers[0].digest}"):
        manager.pull("swap")
    root = manager.fs_info().mountpoint
    assert leftovers(root) == []
    assert image.layers[0].digest.split(":")[1] not in os.listdir(f"{root}/content/blobs/sha256")
