"""User namespaces made for a pod's mappings and id-mapped mounts, on the real kernel; each
mounting test runs in a forked child with a private mount namespace, gone with it."""
from __future__ import annotations

import os

import pytest

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.idmap import idmapped_tree, probe
from runtime.linux.newuserns import user_namespace_child
from runtime.linux.proc import zombies_under
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child
from runtime.process.client import connect_or_start
from runtime.process.idmapprobe import probe_idmap
from tests.kernel import TMPFS_IDMAP

MAP = "0 100000 65536\n"


def test_the_child_is_root_of_a_namespace_with_the_maps_and_owns_what_it_unshares() -> None:
    def child() -> dict[str, object]:
        sc = LinuxSyscalls()
        with user_namespace_child(MAP, "0 200000 1000\n", lambda: sc.unshare(k.CLONE_NEWNET), sc) as pid:
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
            return {"uid_map": open(f"/proc/{pid}/uid_map").read().split(),
                    "gid_map": open(f"/proc/{pid}/gid_map").read().split(),
                    "uid": status["Uid"].split(), "gid": status["Gid"].split(),
                    "user_differs": os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"),
                    "net_differs": os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net"),
                    "alive": os.path.exists(f"/proc/{pid}")}

    got = run_in_child(child)
    assert got == {"uid_map": ["0", "100000", "65536"], "gid_map": ["0", "200000", "1000"],
                   "uid": ["100000"] * 4, "gid": ["200000"] * 4,  # the host's view of its root
                   "user_differs": True, "net_differs": True, "alive": True}


def test_a_failure_inside_is_reported_and_the_child_reaped() -> None:
    def child() -> tuple[str, tuple[int, ...]]:
        def inside() -> None:
            raise ValueError("cannot make it")
        try:
            with user_namespace_child(MAP, MAP, inside, LinuxSyscalls()):
                raise AssertionError("the block must not run")
        except Internal as e:
            message = str(e)
        return message, zombies_under(os.getpid())

    message, zombies = run_in_child(child)
    assert "ValueError: cannot make it" in message and zombies == ()


def test_maps_the_kernel_refuses_are_reported() -> None:
    with pytest.raises(Internal, match="writing uid_map '0 100000 0'"):
        run_in_child(lambda: _enter_and_leave("0 100000 0\n"))


def _enter_and_leave(uid_map: str) -> None:
    with user_namespace_child(uid_map, MAP, lambda: None, LinuxSyscalls()):
        pass


def test_an_idmapped_bind_shows_host_root_as_the_pods_root(tmp_path) -> None:
    source, target = tmp_path / "volume", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "by-host-root").write_text("x")

    def child() -> tuple[int, int]:
        sc = LinuxSyscalls()
        sc.unshare(k.CLONE_NEWNS)
        sc.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
        with user_namespace_child(MAP, MAP, lambda: None, sc) as pid:
            userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
            tree = idmapped_tree(sc, str(source), userns, recursive=True)
            target_fd = os.open(target, os.O_PATH)
            sc.move_mount(tree, "", target_fd, "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)
        seen = os.stat(target / "by-host-root")
        return seen.st_uid, seen.st_gid

    assert run_in_child(child) == (100000, 100000)
    assert not (target / "by-host-root").exists(), "the mount leaked out of the child's namespace"


# /run is a tmpfs here (tests/kernel.py says since when tmpfs takes id-mapped mounts).
TMPFS_REFUSED = "id-mapping /run: its filesystem does not support id-mapped mounts here"


def test_probe_on_this_machine(tmp_path) -> None:
    on_tmpfs = run_in_child(lambda: probe([str(tmp_path), "/run"], LinuxSyscalls()))
    if TMPFS_IDMAP:
        assert on_tmpfs.supported
    else:
        assert on_tmpfs.problem.startswith(TMPFS_REFUSED)
        assert run_in_child(lambda: probe([str(tmp_path)], LinuxSyscalls())).supported
    refused = run_in_child(lambda: probe([str(tmp_path), "/proc"], LinuxSyscalls()))
    assert refused.problem.startswith("id-mapping /proc: its filesystem does not support id-mapped mounts")


def test_the_agent_asks_a_fork_server_child(tmp_path) -> None:
    server = connect_or_start(str(tmp_path / "fork.sock"), str(tmp_path / "fork.log"))
    try:
        if TMPFS_IDMAP:
            assert probe_idmap(server, [str(tmp_path), "/run"]).supported
        else:
            assert probe_idmap(server, [str(tmp_path), "/run"]).problem.startswith(TMPFS_REFUSED)
            assert probe_idmap(server, [str(tmp_path)]).supported
        assert "id-mapping /proc: its filesystem" in probe_idmap(server, ["/proc"]).problem
    finally:
        server.shutdown()
