"""Image mounts, Kubernetes' image volumes (CRI Mount.image, KEP-4639): a pulled image's filesystem,
read-only at a path in the container. (Not the image config's VOLUMEs: runtime/container/volumes.py.)
The decisions, purely; the container's init mounts the image (runtime/linux/imagetree.py).

Unlike containerd, which mounts an image volume on the host (under its pod's dir) and binds it in,
init mounts it on its target in the container's own mount namespace: it never exists on the host,
so it cannot be left behind there, by an agent that is down when the container ends or is removed
or by any other mishap, and there is nothing to reclaim. It lives as long as the container's
processes. Its one host directory, the empty bottom layer of the overlay, is in the container's
run dir and goes with it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runtime.container.model import Mount
from runtime.errors import InvalidArgument, NotFound
from runtime.linux.imagetree import ImageTree
from runtime.process.initspec import BindMount


@dataclass(frozen=True)
class ImageMountSources:
    """What spec building needs to know of a container's image mounts, resolved by the manager."""

    empty: str = ""  # an empty directory of the container's, the bottom layer of every image mount
    layers: Mapping[str, Sequence[str]] = field(default_factory=dict)  # image as given → snapshots, top first


NO_IMAGE_MOUNTS = ImageMountSources()


def clean_sub_path(path: str, what: str) -> str:
    """image_sub_path as a clean relative path, "" for the image's root. An absolute path or any
    '..' is refused outright (the kubelet refuses them too): it names no place in the image. The
    image's own symlinks along the path are left to the kernel, which resolves them inside it."""
    if "\0" in path:
        raise InvalidArgument(f"{what}: image_sub_path {path!r} is not a path")
    if path.startswith("/"):
        raise InvalidArgument(f"{what}: image_sub_path {path!r} must be relative to the image's root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"{what}: image_sub_path {path!r}: '..' is not allowed")
    return "/".join(parts)


def image_mount(m: Mount, target: str, sources: ImageMountSources) -> BindMount:
    """What init mounts for a CRI image volume at ``target``. Read-only, as the CRI defines image
    volumes: a request for a writable one is refused (as containerd does) rather than quietly
    changed."""
    what = f"image volume {m.image!r} at {target}"
    layers = sources.layers.get(m.image)
    if layers is None or not sources.empty:
        raise NotFound(f"{what}: the image was not resolved")
    if not layers:
        raise InvalidArgument(f"{what}: the image has no layers, no filesystem to mount")
    if m.host_path:
        raise InvalidArgument(f"{what}: host_path {m.host_path!r} must be empty")
    if not m.readonly:
        raise InvalidArgument(f"{what}: image volumes are read-only; readonly must be set")
    tree = ImageTree(layers=tuple(layers), empty=sources.empty, sub_path=clean_sub_path(m.image_sub_path, what))
    return BindMount(source="", target=target, readonly=True, recursive_readonly=m.recursive_read_only,
                     propagation=m.propagation, image=tree)
