"""CreateContainer from a checkpoint archive: the image field names the archive (an absolute path
to a local .tar, as CRI-O takes it). The archive is checked and unpacked (archive.py), and the new
container is the request's, with the checkpointed image and process: its start restores the
images (restorer.py) instead of exec'ing. Its rootfs is the checkpointed image with the archive's
file system changes applied; its mounts are the request's, and must cover every external mount
the checkpointed process had.

Restoring an archive trusts it as much as running a privileged container from it: CRIU restores
the credentials, capabilities and mounts its images describe. The checks here keep the archive's
files inside the container's directory and within size limits; they cannot vet a CRIU image.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from runtime.checkpoint import archive, metadata
from runtime.checkpoint.externals import external_mounts
from runtime.checkpoint.rootfsdiff import apply_diff
from runtime.checkpoint.support import refusal
from runtime.container.model import ContainerConfig
from runtime.errors import FailedPrecondition
from runtime.process.initspec import InitSpec, Restore

IMAGES_DIR = "checkpoint"  # in the container's data directory


def is_archive(image: str) -> bool:
    """An image given as an absolute path names a checkpoint archive (image references never
    start with a slash)."""
    return image.startswith("/")


@dataclass(frozen=True)
class Unpacked:
    dir: str  # the archive's files, checked
    checkpointed: metadata.Checkpointed


@contextmanager
def unpacked(path: str, parent: str) -> Iterator[Unpacked]:
    """The archive at ``path`` unpacked into a directory under ``parent``, removed afterwards."""
    staging = tempfile.mkdtemp(prefix=".restore-", dir=parent)
    try:
        archive.read_archive(path, staging)
        yield Unpacked(staging, metadata.parse(archive.read_small(staging, archive.CONFIG_DUMP)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def restored_config(config: ContainerConfig, checkpointed: metadata.Checkpointed) -> ContainerConfig:
    """The request's container, with the image and the process that was checkpointed."""
    p = checkpointed.process
    return replace(config, image=checkpointed.image_id, user_image=checkpointed.image_name, command=p.command,
                   args=p.args, working_dir=p.working_dir, envs=p.envs, stdin=p.stdin, stdin_once=p.stdin_once,
                   tty=False)


def attach(source: Unpacked, spec: InitSpec, container_dir: str, criu: str) -> InitSpec:
    """Moves the images into ``container_dir``, applies the file system changes to the new
    container's upper directory, and makes its spec one that restores rather than execs."""
    why = refusal(spec)
    if why:
        raise FailedPrecondition(f"container {spec.id} cannot be restored: {why}")
    checkpointed = source.checkpointed
    sources = external_mounts(spec)
    missing = [key for key in checkpointed.mounts if key not in sources]
    if missing:
        raise FailedPrecondition(f"the checkpointed container had mounts at {', '.join(missing)}, which the "
                                 "new container lacks: give it mounts there")
    images = os.path.join(container_dir, IMAGES_DIR)
    os.rename(os.path.join(source.dir, archive.IMAGES_DIR), images)
    apply_diff(os.path.join(source.dir, archive.ROOTFS_DIFF), spec.upperdir, checkpointed.rootfs_diff_digest)
    return replace(spec, restore=Restore(criu, images, tuple((key, sources[key]) for key in checkpointed.mounts),
                                         checkpointed.stdio))
