"""Containers: create (rootfs dirs and the init spec), start (by the pod's monitor), stop, remove,
and the state read back from the monitor's exit file. Each change of state is published as an
event once its record shows it (runtime/events).

State-changing calls hold the container's lock, and those that must not race a stop of the pod
(create, start) its sandbox's lock first (runtime/locks.py)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.cgroups.devices import container_rules
from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, container_path
from runtime.cgroups.resources import Resources
from runtime.checkpoint.criu import CriuBinary, find_criu
from runtime.checkpoint.dump import Checkpointer, check_location, subject_of
from runtime.checkpoint.restore import Unpacked, attach, is_archive, restored_config, unpacked
from runtime.container.execsync import ExecResult, exec_sync
from runtime.container.exits import ExitCollector, exit_key
from runtime.container.imagemounts import ImageMountSources
from runtime.container.model import ContainerConfig, NamespaceMode
from runtime.container.record import Container, MountedImage, State, exit_reason
from runtime.container.resize import updated_limits
from runtime.container.sessions import AttachSession, ExecSession, open_attach, open_exec
from runtime.container.spec import build_init_spec
from runtime.container.stopsignal import signal_number, stop_signal
from runtime.errors import FailedPrecondition, NotFound, PycridError
from runtime.events.model import EventKind, Publisher
from runtime.ids import new_id, resolve
from runtime.image import Image, ImageManager
from runtime.linux.capabilities import bounding_set
from runtime.linux.imagetree import ImageTree
from runtime.linux.pidfd import send_signal, wait_gone
from runtime.linux.proc import is_alive, read_status, start_time
from runtime.locks import KeyedLocks
from runtime.names import NameRegistry, container_name
from runtime.process.execspec import exec_spec
from runtime.process.monitorclient import MonitorClient
from runtime.sandbox.processes import Watches
from runtime.sandbox.record import Sandbox
from runtime.sandbox.userns import root_owner
from runtime.store.records import RecordStore

log = logging.getLogger(__name__)
EXIT_FILE_GRACE = 2.0  # the monitor writes the exit file right after reaping init
START_TIMEOUT = 60.0  # a start not running by then is killed and rolled back
MonitorOf = Callable[[Sandbox], MonitorClient]
# Mounts an image volume's tree on a directory (root, target) where nothing sees it, or raises why
# not (for the container ``who``, the volume ``what``).
ImageMountCheck = Callable[[ImageTree, str, str, str, str], None]
IMAGE_MOUNT_EMPTY = "image-empty"  # in the container's run dir: the empty bottom layer of its image volumes


class ContainerManager:
    def __init__(self, store: RecordStore[Container], sandboxes: RecordStore[Sandbox], images: ImageManager,
                 monitor_of: MonitorOf, cgroups: CgroupManager, driver: CgroupDriver, locks: KeyedLocks,
                 root_dir: str, state_dir: str, clock: Callable[[], int], check_image_mount: ImageMountCheck,
                 events: Publisher, watches: Watches, *, recursive_readonly_supported: bool,
                 checkpointer: Checkpointer | None = None) -> None:
        """``recursive_readonly_supported``: this kernel has mount_setattr (probed once by the agent)."""
        self._store = store
        self._sandboxes = sandboxes
        self._images = images
        self._check_image_mount = check_image_mount
        self._monitor_of = monitor_of
        self._cgroups = cgroups
        self._driver = driver
        self._locks = locks
        self._root = os.path.join(root_dir, "containers")
        self._state = os.path.join(state_dir, "containers")
        self._clock = clock
        self._rro = recursive_readonly_supported
        self._names = NameRegistry("container")
        self._exit_pending: dict[str, float] = {}  # container id → when its init was first seen gone
        self._events = events
        self._watches = watches  # the agent's pidfd watch: each running init, "container:<id>"
        self._exits = ExitCollector(self._settle_exit)
        self._checkpointer = checkpointer or Checkpointer(lambda: CriuBinary(find_criu()))
        for d in (self._root, self._state):
            os.makedirs(d, mode=0o711, exist_ok=True)

    def recover(self) -> None:
        monitored: dict[str, dict[str, int]] = {}  # sandbox id → the containers its monitor runs
        for c in self._store.all():
            if not c.stop_signal:  # a record from before stop signals were decided at create
                self._store.update(c.id, lambda r: replace(r, stop_signal=self._resolve_stop_signal(
                    r.config, self._images.status(r.image_id))))
            sandbox = self._sandboxes.find(c.sandbox_id)
            if sandbox is not None:
                self._names.reserve(_name(c.config, sandbox), c.id)
                if c.state == State.CREATED and sandbox.ready:
                    self._adopt_start(c, sandbox, monitored)
            c = self.refresh(c.id)
            if c.state == State.RUNNING:
                self._watch_exit(c)

    def _adopt_start(self, c: Container, sandbox: Sandbox, monitored: dict[str, dict[str, int]]) -> None:
        """A start the agent died in the middle of may have gone through: the monitor runs the
        container (or ran it: its exit file is there). Record it as started, not created. Its
        user went out with the answer the agent never read: the status shows none."""
        if sandbox.id not in monitored:
            try:
                monitored[sandbox.id] = dict(self._monitor_of(sandbox).ping().get("containers", {}))
            except PycridError:
                monitored[sandbox.id] = {}
        pid = monitored[sandbox.id].get(c.id)
        exit_record = _read_exit(c.spec.exit_file)
        if pid is None and exit_record is None:
            return
        started = int(exit_record["finished_at"]) if exit_record else self._clock()
        self._store.update(c.id, lambda r: replace(r, started_at=started, pid=pid or 0,
                                                   pid_start=start_time(pid) or 0 if pid else 0))
        self._events.publish(EventKind.STARTED, c.id, c.sandbox_id)
        log.info("container %s: its start went through while pycrid was down (pid %s)", c.id[:12], pid or "-")

    # --- lookups -------------------------------------------------------------------------
    def get(self, container_id: str) -> Container:
        return self.refresh(resolve(container_id, self._store.ids(), "container"))

    def find(self, container_id: str) -> Container | None:
        try:
            return self.get(container_id)
        except NotFound:
            return None

    def in_pod(self, sandbox_id: str) -> list[Container]:
        """The sandbox's containers, refreshed, oldest first."""
        listed = []
        for c in self._store.all():
            if c.sandbox_id == sandbox_id:
                with contextlib.suppress(NotFound):
                    listed.append(self.refresh(c.id))
        return sorted(listed, key=lambda c: c.created_at)

    def list(self) -> list[Container]:
        """Every container, refreshed; one removed meanwhile is left out, not an error."""
        listed = []
        for c in self._store.all():
            with contextlib.suppress(NotFound):
                listed.append(self.refresh(c.id))
        return listed

    def image_user(self, image_id: str) -> str | None:
        """A container that uses the image, as its rootfs or in an image volume; None if none does.
        While one does, the image is not removed: its snapshots are that container's filesystem."""
        return next((c.id for c in self._store.all() if c.uses_image(image_id)), None)

    # --- lifecycle -----------------------------------------------------------------------
    def create(self, sandbox: Sandbox, config: ContainerConfig) -> str:
        with self._locks.hold(sandbox.id):
            current = self._sandboxes.find(sandbox.id)
            if current is None or not current.ready:
                raise FailedPrecondition(f"sandbox {sandbox.id} is not ready")
            if is_archive(config.image):  # restore a checkpoint (runtime/checkpoint/restore.py)
                with unpacked(config.image, self._root) as source:
                    return self._create(current, restored_config(config, source.checkpointed), source)
            return self._create(current, config)

    def _create(self, sandbox: Sandbox, config: ContainerConfig, restore_from: Unpacked | None = None) -> str:
        image = self._images.status(config.image)
        if image is None:
            raise NotFound(f"image {config.image!r} not found; pull it first")
        mounted = self._mounted_images(config)
        config = self._resolve_target(config)
        container_id = new_id()
        name = _name(config, sandbox)
        self._names.reserve(name, container_id)
        with contextlib.ExitStack() as undo:
            undo.callback(self._names.release, name)
            root, state = os.path.join(self._root, container_id), os.path.join(self._state, container_id)
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
                spec = attach(restore_from, spec, root, find_criu())
            self._store.add(container_id, Container(
                container_id, sandbox.id, config, image.id, _image_ref(image), spec, cgroup,
                created_at=self._clock(), image_name=image_name(config, image),
                stop_signal=self._resolve_stop_signal(config, image),
                mounted_images=tuple(MountedImage(m.container_path, mounted[m.image].id, _image_ref(mounted[m.image]))
                                     for m in config.mounts if m.image)))
            undo.pop_all()
        self._events.publish(EventKind.CREATED, container_id, sandbox.id)
        return container_id

    def _mounted_images(self, config: ContainerConfig) -> dict[str, Image]:
        """The image of each image volume, by the name the CRI mount gives it (the kubelet pulled
        it first, and names it by its id)."""
        found: dict[str, Image] = {}
        for m in config.mounts:
            if m.image and m.image not in found:
                image = self._images.status(m.image)
                if image is None:
                    raise NotFound(f"image {m.image!r} of the image volume at {m.container_path} of container "
                                   f"{config.name!r} not found; pull it first")
                found[m.image] = image
        return found

    def start(self, container_id: str, timeout: float | None = None) -> None:
        """``timeout``: seconds the caller waits (the RPC's deadline); the start is bounded by it."""
        c = self.get(container_id)
        with self._locks.hold(c.sandbox_id), self._locks.hold(c.id):
            c = self.refresh(c.id)
            if c.state != State.CREATED:
                raise FailedPrecondition(f"container {c.id} is {c.state.name.lower()}, not created")
            sandbox = self._sandboxes.get(c.sandbox_id)
            if not sandbox.ready:
                raise FailedPrecondition(f"sandbox {sandbox.id} of container {c.id} is not ready")
            self._start(c, sandbox, min(timeout or START_TIMEOUT, START_TIMEOUT))

    def _start(self, c: Container, sandbox: Sandbox, timeout: float) -> None:
        try:
            if c.spec.log_path:
                os.makedirs(os.path.dirname(c.spec.log_path), exist_ok=True)
            self._cgroups.create(c.cgroup, c.config.resources)
            if not c.spec.privileged:  # privileged containers may use every device, as with runc
                self._cgroups.restrict_devices(c.cgroup, container_rules(
                    (d.host_path, d.permissions) for d in c.spec.devices))
            started = self._monitor_of(sandbox).start(c.spec, timeout)
        except Exception as e:
            # The monitor killed what it started; whatever else reached the cgroup goes too, so
            # the container stays removable.
            with contextlib.suppress(PycridError):
                self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
                self._cgroups.remove(c.cgroup)
            why = str(e)
            self._record_exit(c.id, lambda r: replace(r, finished_at=self._clock(), exit_code=128,
                                                      reason="StartError", message=why))
            raise
        pid = started.pid
        record = self._store.update(c.id, lambda r: replace(
            r, started_at=started.started_at, pid=pid, pid_start=start_time(pid) or 0, user=started.user,
            oom_kills_before=self._cgroups.oom_events(c.cgroup)))
        self._events.publish(EventKind.STARTED, c.id, c.sandbox_id)
        self._watch_exit(record)
        log.info("container %s started, pid %d", c.id, pid)
        _note_oom_score(c, pid)

    def checkpoint(self, container_id: str, location: str, timeout: float) -> None:
        """Writes a checkpoint archive of the running container to ``location``; it keeps running."""
        check_location(location)
        c = self.get(container_id)
        with self._locks.hold(c.id):
            c = self.refresh(c.id)
            if c.state != State.RUNNING:
                raise FailedPrecondition(f"container {c.id} is {c.state.name.lower()}, not running")
            subject = subject_of(c, self._sandboxes.get(c.sandbox_id))
            self._checkpointer.checkpoint(subject, location, os.path.join(self._root, c.id), timeout)

    def stop(self, container_id: str, timeout: int) -> None:
        c = self.find(container_id)
        if c is None:
            return  # the CRI: stopping what is gone succeeds
        with self._locks.hold(c.id):
            self._stop(c.id, timeout)

    def _stop(self, container_id: str, timeout: int) -> None:
        try:
            c = self.refresh(container_id)
        except NotFound:
            return  # removed while we waited for its lock
        if c.state != State.RUNNING:
            return
        if timeout > 0:
            send_signal(c.pid, c.pid_start, signal_number(c.stop_signal) or signal.SIGTERM)
            exited = self._wait_exit(c, float(timeout))
        else:
            exited = False
        # Whatever is left in the cgroup goes too: a container in the host's PID namespace can
        # leave processes behind its init.
        self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
        if not exited and not self._wait_exit(c, 10.0):
            raise FailedPrecondition(f"container {c.id} did not exit after SIGKILL")

    def remove(self, container_id: str) -> None:
        c = self.find(container_id)
        if c is None:
            return
        with self._locks.hold(c.id):
            try:
                c = self.refresh(c.id)
            except NotFound:
                return  # removed while we waited for its lock
            if c.state == State.RUNNING:
                self._stop(c.id, 0)
            if self._cgroups.pids(c.cgroup):  # a start the agent died in the middle of
                self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
            self._cgroups.remove(c.cgroup)
            shutil.rmtree(os.path.join(self._root, c.id), ignore_errors=True)
            shutil.rmtree(os.path.join(self._state, c.id), ignore_errors=True)
            self._watches.unwatch(exit_key(c.id))
            self._store.delete(c.id)
            self._events.publish(EventKind.DELETED, c.id, c.sandbox_id)
            sandbox = self._sandboxes.find(c.sandbox_id)
            if sandbox is not None:
                self._names.release(_name(c.config, sandbox), c.id)

    def stop_in_pod(self, sandbox_id: str) -> None:
        for c in self._store.all():
            if c.sandbox_id == sandbox_id:
                self.stop(c.id, 0)

    def remove_in_pod(self, sandbox_id: str) -> None:
        for c in self._store.all():
            if c.sandbox_id == sandbox_id:
                self.remove(c.id)

    def fail_in_pod(self, sandbox_id: str, why: str) -> None:
        """The pod's monitor or pause died: its running containers are ended; those whose exit the
        monitor can no longer record (it is the one that died) get exit code 255 and ``why``."""
        running = [c for c in self._store.all() if c.sandbox_id == sandbox_id and c.state == State.RUNNING]
        for c in running:
            self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
        deadline = time.monotonic() + EXIT_FILE_GRACE
        for c in running:
            with self._locks.hold(c.id):
                wait_gone(c.pid, c.pid_start, max(0.0, deadline - time.monotonic()))
                # A live monitor writes the real exit once it has drained the output: wait for it.
                while self.refresh(c.id).state == State.RUNNING and time.monotonic() < deadline:
                    time.sleep(0.02)
                if self.refresh(c.id).state == State.RUNNING:
                    self._record_exit(c.id, lambda r: replace(r, finished_at=self._clock(), exit_code=255,
                                                              reason="Error", message=why))

    def update_resources(self, container_id: str, resources: Resources) -> None:
        """Writes what ``resources`` sets to the container's cgroup and records the limits then in
        force (resize.py), which ContainerStatus reports. Under the container's lock: a start
        creates the cgroup from the record."""
        c = self.get(container_id)
        with self._locks.hold(c.id):
            c = self.refresh(c.id)
            limits = updated_limits(c.config.resources, resources)  # refuses what cannot hold, before any write
            if c.state in (State.RUNNING, State.CREATED) and self._cgroups.exists(c.cgroup):
                self._cgroups.apply(c.cgroup, resources)
            self._store.update(c.id, lambda r: replace(r, config=replace(r.config, resources=limits)))

    def reopen_log(self, container_id: str) -> None:
        c = self.get(container_id)
        if c.state != State.RUNNING:
            raise FailedPrecondition(f"container {c.id} is not running")
        self._monitor_of(self._sandboxes.get(c.sandbox_id)).reopen_log(c.id)

    def exec_sync(self, container_id: str, args: tuple[str, ...], timeout: float | None) -> ExecResult:
        c, status = self._running(container_id)
        monitor = self._monitor_of(self._sandboxes.get(c.sandbox_id))
        return exec_sync(monitor, exec_spec(c.id, c.spec, c.pid, status, args), timeout)

    def exec_session(self, container_id: str, args: tuple[str, ...], tty: bool, streams: frozenset[str]) -> ExecSession:
        """A command in the running container, for a streaming client (Exec)."""
        c, status = self._running(container_id)
        monitor = self._monitor_of(self._sandboxes.get(c.sandbox_id))
        return open_exec(monitor, exec_spec(c.id, c.spec, c.pid, status, args, tty=tty), streams)

    def attach_session(self, container_id: str, streams: frozenset[str]) -> AttachSession:
        """The running container's own stdio, for a streaming client (Attach)."""
        c, _ = self._running(container_id)
        if "stdin" in streams and not c.config.stdin:
            raise FailedPrecondition(f"container {c.id} was created without stdin: nothing to attach it to")
        monitor = self._monitor_of(self._sandboxes.get(c.sandbox_id))
        return open_attach(monitor, c.id, streams, terminal=c.config.tty)

    def _running(self, container_id: str) -> tuple[Container, dict[str, str]]:
        c = self.get(container_id)
        status = read_status(c.pid) if c.state == State.RUNNING else None
        if status is None or not is_alive(c.pid, c.pid_start):
            raise FailedPrecondition(f"container {c.id} is {c.state.name.lower()}, not running")
        return c, status

    # --- state ---------------------------------------------------------------------------
    def refresh(self, container_id: str) -> Container:
        """Folds the monitor's exit file (or a vanished process) into the record."""
        c = self._store.get(container_id)
        if c.state != State.RUNNING:
            return c
        exit_record = _read_exit(c.spec.exit_file)
        if exit_record is None:
            if is_alive(c.pid, c.pid_start):
                return c
            # The fork server writes the exit file right after reaping init; give it a moment
            # before deciding the exit was lost (the fork server died with the container).
            first_seen = self._exit_pending.setdefault(c.id, time.monotonic())
            if time.monotonic() - first_seen < EXIT_FILE_GRACE:
                return c
            exit_record = {"exit_code": 255, "signal": 0, "finished_at": self._clock(),
                           "lost": "the pod monitor that watched it is gone; its exit code is unknown"}
        self._exit_pending.pop(c.id, None)
        oom = self._cgroups.oom_events(c.cgroup) > c.oom_kills_before
        return self._record_exit(c.id, lambda r: replace(
            r, finished_at=exit_record["finished_at"], exit_code=exit_record["exit_code"],
            reason=exit_reason(exit_record["exit_code"], exit_record["signal"], oom),
            message=exit_record.get("lost", "")))

    def _record_exit(self, container_id: str, change: Callable[[Container], Container]) -> Container:
        """Records the end of a container once: status calls, the exit collector and a failing
        pod may all see it at a time; the first to record it publishes STOPPED."""
        ended = False

        def once(r: Container) -> Container:
            nonlocal ended
            if r.finished_at:
                return r
            ended = True
            return change(r)

        c = self._store.update(container_id, once)
        if ended:
            self._events.publish(EventKind.STOPPED, c.id, c.sandbox_id)
        return c

    def exited(self, container_id: str) -> None:
        """The agent's watch saw the container's init die: its exit is recorded (and published)
        as soon as the monitor has written it."""
        self._exits.collect(container_id)

    def _watch_exit(self, c: Container) -> None:
        if not self._watches.watch(exit_key(c.id), c.pid, c.pid_start):
            self._exits.collect(c.id)  # gone already

    def _settle_exit(self, container_id: str) -> bool:
        try:
            return self.refresh(container_id).state != State.RUNNING
        except NotFound:
            return True

    def _wait_exit(self, c: Container, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        wait_gone(c.pid, c.pid_start, timeout)
        grace = max(deadline, time.monotonic() + EXIT_FILE_GRACE)
        while time.monotonic() < grace:
            if self.refresh(c.id).state != State.RUNNING:
                return True
            if is_alive(c.pid, c.pid_start) and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return self.refresh(c.id).state != State.RUNNING

    def _resolve_stop_signal(self, config: ContainerConfig, image: Image | None) -> str:
        image_signal = image.config.stop_signal if image else ""
        if image and image_signal and not config.stop_signal and signal_number(image_signal) is None:
            log.warning("image %s: STOPSIGNAL %r names no signal; its containers stop with SIGTERM",
                        image.id, image_signal)
        return stop_signal(config.stop_signal, image_signal)

    def _resolve_target(self, config: ContainerConfig) -> ContainerConfig:
        """A TARGET PID namespace names a running container; its full id goes into the spec."""
        if config.security.pid_mode != NamespaceMode.TARGET:
            return config
        target = self.get(config.security.target_id)
        if target.state != State.RUNNING:
            raise FailedPrecondition(f"target container {target.id} is not running")
        return replace(config, security=replace(config.security, target_id=target.id))



def _note_oom_score(c: Container, pid: int) -> None:
    """Says so when the container could not get the oom_score_adj it asked for (lowering it needs
    CAP_SYS_RESOURCE, which this node does not give us: init set the lowest it could)."""
    wanted = c.spec.oom_score_adj
    try:
        got = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    except (OSError, ValueError):
        return
    if wanted is not None and got != wanted:
        log.warning("container %s: oom_score_adj %d asked, %d set (lowering it needs CAP_SYS_RESOURCE)",
                    c.id[:12], wanted, got)


def _image_ref(image: Image) -> str:
    return image.repo_digests[0] if image.repo_digests else image.id


def image_name(config: ContainerConfig, image: Image) -> str:
    """The kubelet creates containers by image id; statuses name the image as the pod spec does
    (user_specified_image), or else by its first tag, as containerd does, never by a bare id."""
    if config.user_image:
        return config.user_image
    if config.image in (image.id, image.id.removeprefix("sha256:")) and image.repo_tags:
        return image.repo_tags[0]
    return config.image


def _name(config: ContainerConfig, sandbox: Sandbox) -> str:
    s = sandbox.config
    return container_name(config.name, s.name, s.namespace, s.uid, config.attempt)


def _read_exit(path: str) -> dict[str, Any] | None:
    try:
        record = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return None
    return record if isinstance(record, dict) else None

