"""build_init_spec for a pod with a user namespace: the pod's namespace and mappings, which mounts
are id-mapped, and each refusal naming the container."""
from __future__ import annotations

from dataclasses import replace

import pytest

from runtime.container.imagemounts import ImageMountSources
from runtime.container.model import IdMapping, Mount, NamespaceMode, SecurityContext, UserNamespace, UsernsOptions
from runtime.errors import InvalidArgument
from runtime.linux.imagetree import ImageTree
from runtime.process.initspec import BindMount, InitSpec
from tests.unit.container.test_spec_build import CONFIG, DATA, ETC, PATHS, SANDBOX, build

M = IdMapping(0, 100000, 65536)
USERNS = UserNamespace(M, M)
POD = replace(SANDBOX, userns=USERNS)
POD_PATHS = replace(PATHS, userns=f"{PATHS.dir}/userns")
VOLUME = Mount("/v", "/host/v", uid_mappings=(M,), gid_mappings=(M,))
PLAIN = Mount("/p", "/host/p")


def userns_build(**security) -> InitSpec:
    return build(replace(CONFIG, security=SecurityContext(**security), mounts=(VOLUME, PLAIN)),
                 sandbox=POD, paths=POD_PATHS)


def test_a_container_of_a_userns_pod_joins_its_pods_namespace_and_idmaps_the_pods_files() -> None:
    spec = userns_build()
    assert spec.namespaces.user == f"{PATHS.dir}/userns"
    assert spec.userns == USERNS
    assert spec.mounts == (*(replace(m, idmap=True) for m in (*ETC, DATA)),
                           BindMount("/host/v", "/v", idmap=True),  # the kubelet asked: the pod's mappings
                           BindMount("/host/p", "/p"))  # asked for none: a plain bind
    assert InitSpec.from_dict(spec.to_dict()) == spec  # how it crosses to the monitor and init


def test_options_naming_the_pods_user_namespace_are_the_same() -> None:
    assert userns_build(userns=UsernsOptions(NamespaceMode.POD, (M,), (M,))).userns == USERNS


def test_a_pod_without_one_has_no_user_namespace_and_no_idmapped_mount() -> None:
    spec = build(replace(CONFIG, mounts=(PLAIN,)))
    assert (spec.namespaces.user, spec.userns) == ("", None)
    assert not any(m.idmap for m in spec.mounts)


@pytest.mark.parametrize("config, sandbox, paths, message", [
    (replace(CONFIG, security=SecurityContext(userns=UsernsOptions(NamespaceMode.NODE))), POD, POD_PATHS,
     "container 'c': its user namespace \\(the node's user namespace\\) differs from its pod's"),
    (replace(CONFIG, security=SecurityContext(userns=UsernsOptions(
        NamespaceMode.POD, (IdMapping(0, 200000, 65536),), (M,)))), POD, POD_PATHS,
     "container 'c': its user namespace \\(uids 0:200000:65536 .*differs"),
    (replace(CONFIG, security=SecurityContext(userns=UsernsOptions(NamespaceMode.POD, (M,), (M,)))),
     SANDBOX, PATHS, "container 'c': .*differs from its pod's \\(the node's user namespace\\)"),
    (replace(CONFIG, security=SecurityContext(userns=UsernsOptions(NamespaceMode.CONTAINER))), POD, POD_PATHS,
     "container 'c': user namespace mode CONTAINER is not supported"),
    (replace(CONFIG, security=SecurityContext(privileged=True)), replace(POD, privileged=True), POD_PATHS,
     "container 'c': a privileged container cannot run in a user namespace"),
    (replace(CONFIG, security=SecurityContext(pid_mode=NamespaceMode.NODE)), POD, POD_PATHS,
     "container 'c': a container in a user namespace cannot use the node's PID namespace"),
    (replace(CONFIG, mounts=(replace(VOLUME, uid_mappings=(IdMapping(0, 5, 65536),)),)), POD, POD_PATHS,
     "mount at /v: id mappings differ from the pod's user namespace"),
    (replace(CONFIG, mounts=(VOLUME,)), SANDBOX, PATHS, "mount at /v: an id-mapped mount needs a pod with a user"),
])
def test_refused(config, sandbox, paths, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build(config, sandbox=sandbox, paths=paths)


def test_an_image_volume_of_a_userns_pod_has_its_layers_idmapped() -> None:
    image = "sha256:" + "a" * 64
    sources = ImageMountSources("/c1/image-empty", {image: ("/snap/2/fs", "/snap/1/fs")})
    asked = Mount("/tools", "", readonly=True, image=image, uid_mappings=(M,), gid_mappings=(M,))  # as the kubelet
    spec = build(replace(CONFIG, mounts=(asked,)), sandbox=POD, paths=POD_PATHS, image_mounts=sources)
    (volume,) = [m for m in spec.mounts if m.target == "/tools"]
    assert volume.image == ImageTree(("/snap/2/fs", "/snap/1/fs"), "/c1/image-empty") and volume.idmap
    assert InitSpec.from_dict(spec.to_dict()) == spec
    plain = build(replace(CONFIG, mounts=(replace(asked, uid_mappings=(), gid_mappings=()),)), image_mounts=sources)
    assert not [m for m in plain.mounts if m.target == "/tools"][0].idmap  # no user namespace: as it was
    with pytest.raises(InvalidArgument, match="mount at /tools: id mappings differ from the pod's"):
        build(replace(CONFIG, mounts=(replace(asked, uid_mappings=(IdMapping(0, 1, 65536),)),)), sandbox=POD,
              paths=POD_PATHS, image_mounts=sources)
