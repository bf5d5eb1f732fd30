"""An exec's identity comes from the container init's /proc status, read on the host: in a user
namespace pod it is turned back into the pod's ids, which the exec takes once it has joined."""
from __future__ import annotations

from dataclasses import replace

from runtime.container.model import IdMapping, UserNamespace
from runtime.process.execspec import exec_spec
from runtime.process.initspec import InitSpec, Namespaces

SPEC = InitSpec(id="c1", args=("sh",), env=("A=1",), cwd="/", lowerdirs=(), upperdir="", workdir="", rootfs="")
STATUS = {"Uid": "101000\t101000\t101000\t101000", "Gid": "300000\t300000\t300000\t300000",
          "Groups": "300005 301234"}


def test_outside_a_user_namespace_the_ids_are_the_hosts() -> None:
    e = exec_spec("c1", SPEC, 42, STATUS, ("id",))
    assert (e.uid, e.gid, e.groups, e.user_namespace) == (101000, 300000, (300005, 301234), False)


def test_in_a_user_namespace_the_ids_are_the_pods() -> None:
    spec = replace(SPEC, namespaces=Namespaces(user="/pod/userns"),
                   userns=UserNamespace(IdMapping(0, 100000, 65536), IdMapping(0, 300000, 65536)))
    e = exec_spec("c1", spec, 42, STATUS, ("id",))
    assert (e.uid, e.gid, e.groups, e.user_namespace) == (1000, 0, (5, 1234), True)
