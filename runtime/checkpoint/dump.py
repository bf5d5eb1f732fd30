"""CheckpointContainer: a running container's process tree dumped with CRIU (left running, as the
kubelet expects) and its file system changes, written as a checkpoint archive (archive.py).

Everything is made in a work directory under the container's own data directory and removed
whatever happens; the archive reaches ``location`` only whole, by rename. The request's timeout
bounds the whole: CRIU's freezing of the tree by its own --timeout, CRIU's run by a kill at the
deadline (DeadlineExceeded), the steps after it by checks between them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.checkpoint import archive, metadata, rootfsdiff
from runtime.checkpoint.criu import Criu, DumpPlan, dump_args
from runtime.checkpoint.externals import Running, dumped_mounts, external_files, inspect
from runtime.checkpoint.support import refusal
from runtime.container.record import Container
from runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from runtime.linux.proc import PROC
from runtime.process.initspec import InitSpec
from runtime.sandbox.record import Sandbox

DEFAULT_TIMEOUT = 300.0  # seconds, when the request gives none (the CRI: 0 is the runtime's default)


@dataclass(frozen=True)
class Subject:
    """The container to checkpoint, as the container manager knows it."""

    id: str
    name: str
    pid: int
    spec: InitSpec
    image_id: str
    image_name: str
    image_ref: str
    created_at: int
    process: metadata.Process
    annotations: dict[str, str]  # of its spec.dump


def subject_of(c: Container, sandbox: Sandbox) -> Subject:
    config = c.config
    process = metadata.Process(config.command, config.args, config.working_dir, config.envs, config.stdin,
                               config.stdin_once)
    return Subject(c.id, config.name, c.pid, c.spec, c.image_id, c.shown_image, c.image_ref, c.created_at, process,
                   metadata.cri_annotations(config.name, sandbox.id, sandbox.config, c.shown_image))


def check_location(location: str) -> None:
    if not location or not os.path.isabs(location):
        raise InvalidArgument(f"checkpoint location {location!r} must be an absolute path to the archive")
    if not os.path.isdir(os.path.dirname(location)):
        raise InvalidArgument(f"checkpoint location {location}: its directory does not exist")
    if os.path.isdir(location):
        raise InvalidArgument(f"checkpoint location {location} is a directory; name the archive file")


class Checkpointer:
    def __init__(self, criu: Callable[[], Criu], proc_root: str = PROC,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._criu = criu  # found when first needed: pycrid runs without CRIU until asked to checkpoint
        self._proc = proc_root
        self._clock = clock

    def checkpoint(self, subject: Subject, location: str, work_parent: str, timeout: float) -> None:
        """``location`` as check_location() accepts it."""
        why = refusal(subject.spec)
        if why:
            raise FailedPrecondition(f"container {subject.id} cannot be checkpointed: {why}")
        deadline = time.monotonic() + timeout
        criu = self._criu()
        try:
            running = inspect(subject.pid, self._proc)
        except OSError as e:
            raise FailedPrecondition(f"container {subject.id} is not running: {e}") from e
        if running.terminal:
            raise FailedPrecondition(f"container {subject.id} cannot be checkpointed: its stdio is a terminal")
        work = tempfile.mkdtemp(prefix="checkpoint-", dir=work_parent)
        try:
            images = os.path.join(work, archive.IMAGES_DIR)
            os.mkdir(images, 0o700)
            plan = DumpPlan(subject.pid, images, running.net_inode, dumped_mounts(subject.spec, running),
                            external_files(running), freeze_seconds=int(max(1.0, timeout)))
            criu.run(dump_args(plan), images, _left(deadline, "the dump"))
            _left(deadline, "writing the root file system diff")
            self._write_files(subject, running, plan, work)
            _left(deadline, "writing the archive")
            archive.write_archive(work, location)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_files(self, subject: Subject, running: Running, plan: DumpPlan, work: str) -> None:
        diff = rootfsdiff.write_diff(subject.spec.upperdir, os.path.join(work, archive.ROOTFS_DIFF))
        checkpointed = metadata.Checkpointed(
            subject.id, subject.name, subject.image_id, subject.image_name, subject.image_ref,
            subject.created_at, self._clock(), subject.process, plan.mounts, running.stdio, diff.digest)
        files = {archive.CONFIG_DUMP: metadata.config_dump(checkpointed),
                 archive.SPEC_DUMP: metadata.spec_dump(subject.spec, subject.annotations),
                 archive.DELETED_FILES: rootfsdiff.deleted_files(diff)}
        for name, data in files.items():
            with open(os.path.join(work, name), "xb") as f:
                f.write(data)
        stats = os.path.join(plan.images_dir, archive.STATS_DUMP)
        if os.path.exists(stats):  # CRIU's; CRI-O and Podman carry it at the top too
            shutil.copyfile(stats, os.path.join(work, archive.STATS_DUMP))


def _left(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"checkpoint: the request's timeout ran out before {what}")
    return left
