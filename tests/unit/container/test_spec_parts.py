"""The pure pieces of spec building: argv, env, sysctls, log path, image volumes, user, seccomp."""
from __future__ import annotations

import pytest

from runtime.container.model import GroupsPolicy, Mount, NamespaceMode, Seccomp, SecurityContext
from runtime.container.spec import (
    container_user,
    image_volumes,
    log_path,
    merge_command,
    merge_env,
    resolve_seccomp,
    validate_mount,
    validate_sysctls,
)
from runtime.container.volumes import volume_dir_name
from runtime.errors import InvalidArgument
from runtime.image.config import ImageConfig
from runtime.process.initspec import BindMount, User

POD, NODE, CONTAINER = NamespaceMode.POD, NamespaceMode.NODE, NamespaceMode.CONTAINER


@pytest.mark.parametrize("command, args, entrypoint, cmd, want", [
    ((), (), ("/ep",), ("c1", "c2"), ("/ep", "c1", "c2")),
    (("/bin/sh",), (), ("/ep",), ("c1",), ("/bin/sh",)),  # command replaces entrypoint and cmd
    (("/bin/sh",), ("-c", "x"), ("/ep",), ("c1",), ("/bin/sh", "-c", "x")),
    ((), ("a1",), ("/ep", "e1"), ("c1",), ("/ep", "e1", "a1")),  # args replace cmd only
    ((), ("/bin/true",), (), ("c1",), ("/bin/true",)),  # args alone run when there is no entrypoint
    ((), (), (), ("/cmd", "x"), ("/cmd", "x")),
    ((), (), ("/ep",), (), ("/ep",)),
])
def test_merge_command(command, args, entrypoint, cmd, want) -> None:
    assert merge_command(command, args, entrypoint, cmd) == want


@pytest.mark.parametrize("command, args, entrypoint, cmd", [
    ((), (), (), ()),
    ((), (), ("",), ()),
    (("a\0b",), (), (), ()),
])
def test_merge_command_refuses(command, args, entrypoint, cmd) -> None:
    with pytest.raises(InvalidArgument, match="command"):
        merge_command(command, args, entrypoint, cmd)


@pytest.mark.parametrize("image_env, envs, want", [
    ((), (), ()),
    (("A=1", "B=2"), (), ("A=1", "B=2")),
    (("A=1", "B=2"), (("B", "x"),), ("A=1", "B=x")),  # override keeps the image's position
    (("A=1", "B=2"), (("C", "3"), ("A", "y")), ("A=y", "B=2", "C=3")),  # new names appended
    (("A=a=b",), (("C", "k=v=w"),), ("A=a=b", "C=k=v=w")),  # '=' in values
    (("A",), (), ("A=",)),
    ((), (("X", "1"), ("Y", "2"), ("X", "3")), ("X=3", "Y=2")),  # repeated: last value, first place
    (("PATH=/bin",), (("PATH", ""),), ("PATH=",)),
])
def test_merge_env(image_env, envs, want) -> None:
    assert merge_env(image_env, envs) == want


@pytest.mark.parametrize("image_env, envs, bad", [
    ((), (("", "x"),), "''"),
    ((), (("A=B", "x"),), "'A=B'"),
    ((), (("A", "x\0y"),), "'A'"),
    (("=x",), (), "''"),
])
def test_merge_env_refuses(image_env, envs, bad) -> None:
    with pytest.raises(InvalidArgument, match=bad):
        merge_env(image_env, envs)


def test_env_does_not_leak_between_containers_of_one_image() -> None:
    """CVE-2021-21334: one container's variables must not show up in the next one's env."""
    image = ImageConfig(env=("PATH=/bin", "SHARED=image"))
    first = merge_env(image.env, (("SECRET", "one"), ("SHARED", "first")))
    second = merge_env(image.env, (("OTHER", "two"),))
    assert first == ("PATH=/bin", "SHARED=first", "SECRET=one")
    assert second == ("PATH=/bin", "SHARED=image", "OTHER=two")
    assert image.env == ("PATH=/bin", "SHARED=image")
    assert merge_env(image.env, ()) == ("PATH=/bin", "SHARED=image")


@pytest.mark.parametrize("sysctls, net, ipc", [
    ({}, NODE, NODE),
    ({"net.ipv4.ip_forward": "1"}, POD, NODE),
    ({"net.ipv4.ip_local_port_range": "1024 65000"}, POD, POD),
    ({"net.ipv4.conf.eth0.forwarding": "1"}, POD, POD),
    ({"kernel.shm_rmid_forced": "1", "kernel.shmmax": "65536"}, NODE, POD),
    ({"kernel.msgmax": "8192", "kernel.sem": "250 32000 32 128"}, NODE, POD),
    ({"fs.mqueue.msg_max": "10"}, NODE, POD),
    ({"net.core.somaxconn": "1024"}, CONTAINER, POD),
])
def test_sysctls_allowed(sysctls, net, ipc) -> None:
    got = validate_sysctls(sysctls, net, ipc)
    assert got == sysctls and got is not sysctls


@pytest.mark.parametrize("sysctls, net, ipc, message", [
    ({"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/x"}, POD, POD, "kernel.shm_rmid_forced.*'\\+'"),
    ({"kernel.shm_rmid_forced": "1=2"}, POD, POD, "kernel.shm_rmid_forced.*'='"),
    ({"net.ipv4.ip_forward": "1\nkernel.x=1"}, POD, POD, "net.ipv4.ip_forward"),
    ({"kernel.core_pattern": "|/evil"}, POD, POD, "kernel.core_pattern.*not a namespaced"),
    ({"kernel.hostname": "x"}, POD, POD, "kernel.hostname"),
    ({"vm.overcommit_memory": "1"}, POD, POD, "vm.overcommit_memory"),
    ({"kernel.semx": "1"}, POD, POD, "kernel.semx"),
    ({"net.ipv4.ip_forward": "1"}, NODE, POD, "net.ipv4.ip_forward.*host's network"),
    ({"kernel.shmmax": "1"}, POD, NODE, "kernel.shmmax.*host's IPC"),
    ({"fs.mqueue.msg_max": "1"}, POD, NODE, "fs.mqueue.msg_max"),
    ({"net/ipv4/ip_forward": "1"}, POD, POD, "net/ipv4/ip_forward"),
    ({"net.ipv4..ip_forward": "1"}, POD, POD, r"net\.ipv4\.\.ip_forward"),
    ({"net.ipv4.conf.../../x": "1"}, POD, POD, r"net\.ipv4\.conf\.\.\./\.\./x"),
    ({"net": "1"}, POD, POD, "'net'"),
])
def test_sysctls_refused(sysctls, net, ipc, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate_sysctls(sysctls, net, ipc)


@pytest.mark.parametrize("directory, path, want", [
    ("/var/log/pods/ns_p_u", "c/0.log", "/var/log/pods/ns_p_u/c/0.log"),
    ("/var/log/pods/ns_p_u/", "c/0.log", "/var/log/pods/ns_p_u/c/0.log"),
    ("/var/log/pods/x", "./c//1.log", "/var/log/pods/x/c/1.log"),
    ("/var/log/pods/x", "c.log", "/var/log/pods/x/c.log"),
    ("", "c/0.log", ""),
    ("/var/log/pods/x", "", ""),
])
def test_log_path(directory, path, want) -> None:
    assert log_path(directory, path) == want


@pytest.mark.parametrize("directory, path, message", [
    ("/var/log/pods/x", "../../etc/x", r"'\.\./\.\./etc/x'"),
    ("/var/log/pods/x", "c/../../../etc/shadow", "etc/shadow"),
    ("/var/log/pods/x", "c/../0.log", r"c/\.\./0\.log"),  # would stay inside; '..' is refused anyway
    ("/var/log/pods/x", "/etc/passwd", "'/etc/passwd'.*relative"),
    ("/var/log/pods/x", ".", "'.'"),
    ("/var/log/pods/x", "a\0b", "a"),
    ("relative/dir", "c/0.log", "'relative/dir'"),
])
def test_log_path_refused(directory, path, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        log_path(directory, path)


def _vol(path: str) -> BindMount:
    return BindMount(source=f"/run/c1/volumes/{volume_dir_name(path)}", target=path)


@pytest.mark.parametrize("volumes, covered, want", [
    ((), (), ()),
    (("/data",), (), (_vol("/data"),)),
    (("/b", "/a"), (), (_vol("/a"), _vol("/b"))),
    (("/data/", "data", "/data"), (), (_vol("/data"),)),  # one path, however spelled
    (("/data", "/logs"), ("/data",), (_vol("/logs"),)),  # a CRI mount covers it
    (("/data/sub", "/logs"), ("/data/",), (_vol("/logs"),)),
    (("/database",), ("/data",), (_vol("/database"),)),  # a prefix is not a parent
])
def test_image_volumes(volumes, covered, want) -> None:
    assert image_volumes(volumes, "/run/c1/volumes", covered) == want


def test_image_volume_sources_never_contain_the_path() -> None:
    """CVE-2022-23648: the host directory is named by a hash, never by the image's string."""
    (mount,) = image_volumes(("/var/lib/x",), "/v")
    assert mount.source == "/v/" + volume_dir_name("/var/lib/x")
    assert "var" not in mount.source and len(mount.source) == len("/v/") + 32


@pytest.mark.parametrize("volume", ["../../x", "/a/../../x", "/data/..", "a\0b", "", "/"])
def test_image_volume_refused(volume: str) -> None:
    with pytest.raises(InvalidArgument, match="image volume"):
        image_volumes((volume,), "/v")


def test_image_volume_message_names_the_path() -> None:
    with pytest.raises(InvalidArgument, match=r"'\.\./\.\./x'"):
        image_volumes(("../../x",), "/v")


@pytest.mark.parametrize("sec, image_user, sandbox_groups, want", [
    (SecurityContext(), "", (), User()),
    (SecurityContext(), "1000", (), User(uid=1000)),
    (SecurityContext(), "1000:2000", (), User(uid=1000, gid=2000)),
    (SecurityContext(), "nginx", (), User(username="nginx")),
    (SecurityContext(), "nginx:101", (), User(username="nginx", gid=101)),
    (SecurityContext(), "nginx:staff", (), User(username="nginx", group="staff")),
    (SecurityContext(run_as_user=0), "nginx:101", (), User(uid=0)),  # the CRI replaces the image user
    (SecurityContext(run_as_user=5, run_as_group=6), "1:2", (), User(uid=5, gid=6)),
    (SecurityContext(run_as_username="www"), "1:2", (), User(username="www")),
    (SecurityContext(run_as_username="www", run_as_group=7), "", (), User(username="www", gid=7)),
    (SecurityContext(supplemental_groups=(3, 4)), "", (4, 5), User(additional_gids=(3, 4, 5))),
    (SecurityContext(run_as_user=2**31 - 1), "", (), User(uid=2**31 - 1)),
    (SecurityContext(), "\u00b2:\u00b2", (), User(username="\u00b2", group="\u00b2")),  # a name
    # Strict: init leaves the image's /etc/group out; the CRI's groups stay.
    (SecurityContext(run_as_user=1000, supplemental_groups=(1234,), groups_policy=GroupsPolicy.STRICT), "", (),
     User(uid=1000, additional_gids=(1234,), image_groups=False)),
    (SecurityContext(groups_policy=GroupsPolicy.STRICT), "nginx", (5,),
     User(username="nginx", additional_gids=(5,), image_groups=False)),
])
def test_container_user(sec, image_user, sandbox_groups, want) -> None:
    assert container_user(sec, image_user, sandbox_groups) == want


@pytest.mark.parametrize("sec, image_user, sandbox_groups, message", [
    (SecurityContext(run_as_user=2**31), "", (), "uid 2147483648"),
    (SecurityContext(run_as_user=2**32 + 5), "", (), "uid 4294967301"),
    (SecurityContext(run_as_user=-1), "", (), "uid -1"),
    (SecurityContext(run_as_user=0, run_as_group=2**31), "", (), "gid 2147483648"),
    (SecurityContext(), "2147483648", (), "image uid 2147483648"),
    (SecurityContext(), "1:4294967301", (), "image gid 4294967301"),
    (SecurityContext(), "-1", (), "image uid -1"),  # a number, as runc reads it, not a user name
    (SecurityContext(), "nginx:-1", (), "image gid -1"),
    (SecurityContext(supplemental_groups=(2**31,)), "", (), "supplemental gid 2147483648"),
    (SecurityContext(), "", (2**32 + 5,), "supplemental gid 4294967301"),
    (SecurityContext(run_as_group=1), "", (), "run_as_group 1: set without"),
    (SecurityContext(run_as_user=1, run_as_username="x"), "", (), "only one"),
])
def test_container_user_refused(sec, image_user, sandbox_groups, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        container_user(sec, image_user, sandbox_groups)


RD, UN = Seccomp("RuntimeDefault"), Seccomp("Unconfined")


@pytest.mark.parametrize("container, sandbox, privileged, want", [
    (RD, UN, False, ("RuntimeDefault", "")),
    (UN, RD, False, ("Unconfined", "")),
    (Seccomp(""), RD, False, ("RuntimeDefault", "")),  # not given: the sandbox's
    (Seccomp(""), Seccomp(""), False, ("Unconfined", "")),
    (Seccomp("Localhost", "/p.json"), UN, False, ("Localhost", "/p.json")),
    (Seccomp(""), Seccomp("Localhost", "/s.json"), False, ("Localhost", "/s.json")),
    (RD, RD, True, ("Unconfined", "")),  # privileged
])
def test_resolve_seccomp(container, sandbox, privileged, want) -> None:
    assert resolve_seccomp(container, sandbox, privileged) == want


@pytest.mark.parametrize("container, message", [
    (Seccomp("Localhost", ""), "Localhost profile ''"),
    (Seccomp("Localhost", "rel.json"), "'rel.json'"),
    (Seccomp("Bogus"), "'Bogus'"),
])
def test_resolve_seccomp_refused(container, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve_seccomp(container, UN, False)


@pytest.mark.parametrize("mount, want", [
    (Mount("/data", "/host/d"), BindMount("/host/d", "/data")),
    (Mount("/data/", "/host/d/", readonly=True), BindMount("/host/d", "/data", readonly=True)),
    (Mount("/d", "/h", readonly=True, recursive_read_only=True),
     BindMount("/h", "/d", readonly=True, recursive_readonly=True)),
    (Mount("/d", "/h", propagation="rslave"), BindMount("/h", "/d", propagation="rslave")),
    (Mount("/d", "/h", propagation="rshared"), BindMount("/h", "/d", propagation="rshared")),
])
def test_validate_mount(mount, want) -> None:
    assert validate_mount(mount, "app", True) == want


@pytest.mark.parametrize("mount, message", [
    (Mount("data", "/h"), "'data'.*absolute"),
    (Mount("/a/../../etc", "/h"), r"'/a/\.\./\.\./etc'"),
    (Mount("/d", "relative"), "'relative'"),
    (Mount("/d", ""), "host_path ''"),
    (Mount("/d", "", image="busybox"), "image volume 'busybox' is not a bind of a host path"),
    (Mount("/d", "/h", image="busybox"), "image volume 'busybox' is not a bind of a host path"),
    (Mount("/d", "/h", image_sub_path="etc"), "image_sub_path 'etc' without an image"),
    (Mount("/d", "/h", propagation="shared"), "'shared'"),
    (Mount("/d", "/h", recursive_read_only=True), "recursive_read_only"),
    (Mount("/d", "/h", readonly=True, recursive_read_only=True, propagation="rslave"), "recursive_read_only"),
])
def test_validate_mount_refused(mount, message) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        validate_mount(mount, "app", True)
    assert str(refused.value).startswith("container 'app': mount")


def test_ambient_capabilities_are_carried_only_when_granted() -> None:
    from runtime.container.model import ContainerConfig
    from runtime.image.config import ImageConfig
    from runtime.sandbox.model import SandboxConfig, SandboxPaths
    from runtime.container.spec import build_init_spec
    sec = SecurityContext(capabilities_add=("NET_ADMIN",), capabilities_add_ambient=("net_admin",))
    paths = SandboxPaths("/d", "/d/net", "/d/ipc", "/d/uts", "", "/d/hosts", "/d/resolv", "/d/hn", "/d/shm")
    spec = build_init_spec("c" * 64, ContainerConfig(name="c", attempt=0, image="i", command=("sh",),
                                                      security=sec),
                           ImageConfig(), SandboxConfig(name="p", uid="u", namespace="n"), paths,
                           lowerdirs=("/l",), upperdir="/u", workdir="/w", rootfs="/r", volumes_dir="/v",
                           cgroup="/c", cgroup_v1_dirs=None, exit_file="/e", state_dir="/s",
                           sandbox_log_dir="", bounding=frozenset({"CAP_NET_ADMIN", "CAP_CHOWN", "CAP_KILL"}),
                           recursive_readonly_supported=True)
    assert spec.ambient_capabilities == ("CAP_NET_ADMIN",)
    assert "CAP_NET_ADMIN" in spec.capabilities
