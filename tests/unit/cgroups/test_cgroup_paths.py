import pytest

from runtime.cgroups.paths import (
    CgroupDriver,
    container_path,
    expand_slice,
    leaf_names,
    normalize_path,
    parent_path,
)
from runtime.errors import InvalidArgument

UID = "0a1b2c3d_1111_2222_3333_444455556666"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/", "/"),
        ("/kubepods", "/kubepods"),
        ("/kubepods/", "/kubepods"),
        ("//kubepods//burstable", "/kubepods/burstable"),
    ],
)
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


@pytest.mark.parametrize("path", ["", "kubepods", "/kubepods/../etc", "/a/./b", "/..", "/a\0b"])
def test_normalize_path_rejects(path):
    with pytest.raises(InvalidArgument):
        normalize_path(path)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("-.slice", "/"),
        ("kubepods.slice", "/kubepods.slice"),
        ("kubepods-burstable.slice", "/kubepods.slice/kubepods-burstable.slice"),
        (
            f"kubepods-burstable-pod{UID}.slice",
            "/kubepods.slice/kubepods-burstable.slice"
            f"/kubepods-burstable-pod{UID}.slice",
        ),
    ],
)
def test_expand_slice(name, expected):
    assert expand_slice(name) == expected


@pytest.mark.parametrize(
    "name",
    ["kubepods", "kubepods.scope", "/kubepods.slice", "a/b.slice", "-a.slice", "a-.slice",
     "a--b.slice", ".slice", "..slice"],
)
def test_expand_slice_rejects(name):
    with pytest.raises(InvalidArgument):
        expand_slice(name)


@pytest.mark.parametrize(
    "driver, parent, cid, expected",
    [
        (CgroupDriver.CGROUPFS, f"/kubepods/burstable/pod{UID}", "abc123",
         f"/kubepods/burstable/pod{UID}/abc123"),
        (CgroupDriver.CGROUPFS, "/kubepods/", "abc123", "/kubepods/abc123"),
        (CgroupDriver.CGROUPFS, "", "abc123", "/pycrid/abc123"),
        (CgroupDriver.CGROUPFS, "/", "abc123", "/abc123"),
        (CgroupDriver.SYSTEMD, f"kubepods-burstable-pod{UID}.slice", "abc123",
         f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice"
         "/cri-pycrid-abc123.scope"),
        (CgroupDriver.SYSTEMD, "", "abc123", "/pycrid.slice/cri-pycrid-abc123.scope"),
        (CgroupDriver.SYSTEMD, "-.slice", "abc123", "/cri-pycrid-abc123.scope"),
    ],
)
def test_container_path(driver, parent, cid, expected):
    assert container_path(driver, parent, cid) == expected


@pytest.mark.parametrize(
    "driver, parent, cid",
    [
        (CgroupDriver.CGROUPFS, "kubepods", "abc"),  # relative
        (CgroupDriver.CGROUPFS, "kubepods.slice", "abc"),  # a slice needs the systemd driver
        (CgroupDriver.CGROUPFS, "/kubepods/../../etc", "abc"),
        (CgroupDriver.SYSTEMD, "/kubepods", "abc"),  # a path needs the cgroupfs driver
        (CgroupDriver.SYSTEMD, "kubepods-.slice", "abc"),
        (CgroupDriver.CGROUPFS, "/kubepods", ""),
        (CgroupDriver.CGROUPFS, "/kubepods", ".."),
        (CgroupDriver.CGROUPFS, "/kubepods", "a/b"),
        (CgroupDriver.SYSTEMD, "kubepods.slice", "../x"),
    ],
)
def test_container_path_rejects(driver, parent, cid):
    with pytest.raises(InvalidArgument):
        container_path(driver, parent, cid)


def test_parent_path():
    assert parent_path(CgroupDriver.CGROUPFS, "/kubepods//besteffort/") == "/kubepods/besteffort"
    assert parent_path(CgroupDriver.SYSTEMD, "kubepods-besteffort.slice") == (
        "/kubepods.slice/kubepods-besteffort.slice"
    )
    assert CgroupDriver("systemd") is CgroupDriver.SYSTEMD


@pytest.mark.parametrize("driver", list(CgroupDriver))
def test_leaf_names_cover_what_either_driver_names_a_container(driver):
    path = container_path(driver, "", "abc123")
    assert path.rsplit("/", 1)[1] in leaf_names("abc123")
    with pytest.raises(InvalidArgument):
        leaf_names("../x")
