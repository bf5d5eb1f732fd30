import signal

import pytest

from runtime.cgroups.manager import detect, new_manager
from runtime.cgroups.paths import leaf_names
from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.cgroups.testing import FakeCgroupManager
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager
from runtime.errors import NotFound


def test_detect(v1_tree, v2_tree, tmp_path):
    assert detect(str(v1_tree)) == "v1"
    assert detect(str(v2_tree)) == "v2"
    # Hybrid: v1 controllers plus a controller-less cgroup2 at unified/.
    (v1_tree / "unified").mkdir()
    (v1_tree / "unified" / "cgroup.controllers").write_text("\n")
    assert detect(str(v1_tree)) == "v1"


def test_new_manager_picks_the_driver(v1_tree, v2_tree, kills):
    assert isinstance(new_manager(str(v1_tree), kill=kills), V1Manager)
    assert isinstance(new_manager(str(v2_tree), kill=kills), V2Manager)
    assert new_manager(str(v2_tree), kill=kills).version == "v2"


@pytest.fixture(params=["v1", "v2", "fake"])
def any_manager(request, kills):
    if request.param == "fake":
        return FakeCgroupManager()
    return new_manager(str(request.getfixturevalue(f"{request.param}_tree")), kill=kills)


def test_the_fake_and_the_drivers_agree_on_the_contract(any_manager):
    """The lifecycle the container manager relies on, against both drivers and the fake."""
    m, path = any_manager, "/pycrid/pod1/c1"
    assert not m.exists(path)
    assert m.pids(path) == []
    with pytest.raises(NotFound):
        m.apply(path, Resources(cpu_shares=2))
    m.create(path, Resources(memory_limit_in_bytes=64 << 20, pids_limit=10))
    assert m.exists(path)
    m.add_process(path, 1234)
    assert m.pids("/pycrid/pod1") == [1234]
    m.apply(path, Resources(cpu_shares=512))
    m.kill_all("/nope", signal.SIGTERM)
    assert m.oom_events(path) == 0
    assert isinstance(m.stats(path), CgroupStats)
    m.remove("/pycrid/pod1")
    assert not m.exists(path) and not m.exists("/pycrid/pod1")
    m.remove("/pycrid/pod1")


def test_the_fake_records_and_fails_on_request():
    fake = FakeCgroupManager()
    fake.create("/a", Resources(pids_limit=3))
    fake.kill_all("/a", signal.SIGTERM)
    assert fake.resources == {"/a": Resources(pids_limit=3)}
    assert fake.signals == [("/a", signal.SIGTERM)]
    fake.errors["remove"] = OSError("boom")
    with pytest.raises(OSError):
        fake.remove("/a")
    fake.remove("/a")
    assert not fake.exists("/a")


def test_find_looks_everywhere_for_an_objects_cgroups(any_manager):
    """An object's cgroups under any parent, under either driver's name; not another id's, nor
    what is below a match."""
    m, names = any_manager, leaf_names("c1")
    for path in ("/pycrid/c1", "/kubepods/pod9/cri-pycrid-c1.scope", "/pycrid/c1/inner",
                 "/pycrid/c10", "/pycrid/pod/c2"):
        m.create(path, Resources())
    assert m.find(names) == ["/kubepods/pod9/cri-pycrid-c1.scope", "/pycrid/c1"]
    assert m.find(leaf_names("nothing")) == []


def test_v1_find_sees_a_cgroup_missing_from_some_hierarchies(v1_tree, kills):
    (v1_tree / "pids" / "pycrid" / "c1").mkdir(parents=True)  # a create cut short
    assert V1Manager(str(v1_tree), kill=kills).find(leaf_names("c1")) == ["/pycrid/c1"]
