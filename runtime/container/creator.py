"""CreateContainer's work: the container's dirs, its init spec and its record, all or nothing.

The images it uses (its rootfs' and its image volumes') are leased from the image manager until
the record names them, so a RemoveImage meanwhile is refused instead of taking their layers."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, container_path
from runtime.container.imagemounts import ImageMountSources
from runtime.container.model import ContainerConfig
from runtime.container.record import Container, MountedImage
from runtime.container.spec import build_init_spec
from runtime.container.stopsignal import signal_number, stop_signal
from runtime.errors import NotFound
from runtime.events.model import EventKind, Publisher
from runtime.ids import new_id
from runtime.image import Image, ImageManager
from runtime.linux.capabilities import bounding_set
from runtime.linux.imagetree import ImageTree
from runtime.names import NameRegistry, container_name
from runtime.sandbox.record import Sandbox
from runtime.sandbox.userns import root_owner
from runtime.store.records import RecordStore

if TYPE_CHECKING:
    from runtime.checkpoint.restore import Unpacked

log = logging.getLogger(__name__)
# Mounts an image volume's tree on a directory (root, target) where nothing sees it, or raises why
# not (for the container ``who``, the volume ``what``).
ImageMountCheck = Callable[[ImageTree, str, str, str, str], None]
IMAGE_MOUNT_EMPTY = "image-empty"  # in the container's run dir: the empty bottom layer of its image volumes


@dataclass(frozen=True)
class CreationPlaces:
    """Where containers' files go: ``root``/<id> keeps the upper, work and volume dirs, ``state``/<id>
    the rootfs mount point, exit file and image-volume bottom layer."""

    root: str
    state: str


class ContainerCreator:
    def __init__(self, store: RecordStore[Container], images: ImageManager, names: NameRegistry,
                 cgroups: CgroupManager, driver: CgroupDriver, places: CreationPlaces,
                 clock: Callable[[], int], check_image_mount: ImageMountCheck, events: Publisher, *,
                 recursive_readonly_supported: bool) -> None:
        self._store = store
        self._images = images
        self._names = names
        self._cgroups = cgroups
        self._driver = driver
        self._places = places
        self._clock = clock
        self._check_image_mount = check_image_mount
        self._events = events
        self._rro = recursive_readonly_supported

    def create(self, sandbox: Sandbox, config: ContainerConfig, restore_from: Unpacked | None = None) -> str:
        """Creates the container in ``sandbox`` (whose lock the caller holds) and returns its id;
        ``restore_from``: a checkpoint it starts from instead of its command."""
        refs = [config.image, *(m.image for m in config.mounts if m.image)]
        with self._images.leased(refs) as found:
            image = found.get(config.image)
            if image is None:
                raise NotFound(f"image {config.image!r} not found; pull it first")
            for m in config.mounts:
                if m.image and m.image not in found:
                    raise NotFound(f"image {m.image!r} of the image volume at {m.container_path} of container "
                                   f"{config.name!r} not found; pull it first")
            mounted = {m.image: found[m.image] for m in config.mounts if m.image}
            container_id = self._create(sandbox, config, image, mounted, restore_from)
        self._events.publish(EventKind.CREATED, container_id, sandbox.id)
        return container_id

    def _create(self, sandbox: Sandbox, config: ContainerConfig, image: Image, mounted: dict[str, Image],
                restore_from: Unpacked | None) -> str:
        container_id = new_id()
        name = container_record_name(config, sandbox)
        self._names.reserve(name, container_id)
        with contextlib.ExitStack() as undo:
            undo.callback(self._names.release, name)
            root = os.path.join(self._places.root, container_id)
            state = os.path.join(self._places.state, container_id)
            undo.callback(shutil.rmtree, root, True)
            undo.callback(shutil.rmtree, state, True)
            for d in ("upper", "work", "volumes"):
                os.makedirs(os.path.join(root, d), mode=0o755)
            os.makedirs(os.path.join(state, "rootfs"), mode=0o700)
            image_mounts = ImageMountSources(os.path.join(state, IMAGE_MOUNT_EMPTY),
                                             {ref: self._images.lowerdirs(i.id) for ref, i in mounted.items()})
            if mounted:
                os.mkdir(image_mounts.empty, mode=0o755)
            cgroup = container_path(self._driver, sandbox.config.cgroup_parent, container_id)
            spec = build_init_spec(
                container_id, config, image.config, sandbox.config, sandbox.paths,
                lowerdirs=self._images.lowerdirs(image.id), upperdir=os.path.join(root, "upper"),
                workdir=os.path.join(root, "work"), rootfs=os.path.join(state, "rootfs"),
                volumes_dir=os.path.join(root, "volumes"), cgroup=cgroup,
                cgroup_v1_dirs=self._cgroups.hierarchy_dirs(cgroup), exit_file=os.path.join(state, "exit.json"),
                state_dir=state, sandbox_log_dir=sandbox.config.log_directory, bounding=bounding_set(),
                image_mounts=image_mounts, recursive_readonly_supported=self._rro)
            if spec.userns is not None:  # the rootfs' root is the upper dir's: the pod's root owns it
                os.chown(spec.upperdir, *root_owner(spec.userns))
            for m in spec.mounts:
                if m.image is not None:
                    self._check_image_mount(m.image, state, "rootfs", f"container {config.name!r}",
                                            f"image volume at {m.target}")
            if restore_from is not None:
                from runtime.checkpoint.criu import find_criu
                from runtime.checkpoint.restore import attach
                spec = attach(restore_from, spec, root, find_criu())
            # Its fsyncs run beside the start's preparation: the manager waits for them before it answers.
            self._store.add(container_id, Container(
                container_id, sandbox.id, config, image.id, image_ref(image), spec, cgroup,
                created_at=self._clock(), image_name=image_name(config, image),
                stop_signal=resolve_stop_signal(config, image),
                mounted_images=tuple(MountedImage(m.container_path, mounted[m.image].id, image_ref(mounted[m.image]))
                                     for m in config.mounts if m.image)), sync_beside=True)
            undo.pop_all()
        return container_id


def resolve_stop_signal(config: ContainerConfig, image: Image | None) -> str:
    """The signal that stops the container: its config's, else its image's STOPSIGNAL, else SIGTERM."""
    image_signal = image.config.stop_signal if image else ""
    if image and image_signal and not config.stop_signal and signal_number(image_signal) is None:
        log.warning("image %s: STOPSIGNAL %r names no signal; its containers stop with SIGTERM",
                    image.id, image_signal)
    return stop_signal(config.stop_signal, image_signal)


def image_ref(image: Image) -> str:
    return image.repo_digests[0] if image.repo_digests else image.id


def image_name(config: ContainerConfig, image: Image) -> str:
    """The kubelet creates containers by image id; statuses name the image as the pod spec does
    (user_specified_image), or else by its first tag, as containerd does, never by a bare id."""
    if config.user_image:
        return config.user_image
    if config.image in (image.id, image.id.removeprefix("sha256:")) and image.repo_tags:
        return image.repo_tags[0]
    return config.image


def container_record_name(config: ContainerConfig, sandbox: Sandbox) -> str:
    """The name the CRI reserves for the container in its pod (one live container per name)."""
    s = sandbox.config
    return container_name(config.name, s.name, s.namespace, s.uid, config.attempt)
