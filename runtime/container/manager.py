"""Containers: create (rootfs dirs and the init spec), start (by the pod's monitor), stop, remove,
and the state read back from the monitor's exit file. Create also prepares the start, as CRI-O
does (runc create): the cgroup is made and init set up, held by the monitor until start lets it
exec; a create that cannot prepare leaves the whole set-up to the start. Each change of state is published as an
event once its record shows it (runtime/events).

State-changing calls hold the container's lock, and those that must not race a stop of the pod
(create, start) its sandbox's lock first (runtime/locks.py)."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import spans
from runtime.cgroups.devices import container_rules
from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver
from runtime.cgroups.resources import Resources

# The rest of the checkpoint code (CRIU, archives, rootfs diffs: ~4 MiB of the agent's memory) is
# imported by the calls that checkpoint or restore, not by every agent.
from runtime.checkpoint.support import is_archive
from runtime.container.creator import (
    ContainerCreator,
    CreationPlaces,
    ImageMountCheck,
    container_record_name,
    resolve_stop_signal,
)
from runtime.container.execsync import ExecResult, exec_sync
from runtime.container.exitstate import EXIT_FILE_GRACE, ExitTracker, read_exit
from runtime.container.model import ContainerConfig, NamespaceMode
from runtime.container.record import Container, State
from runtime.container.resize import updated_limits
from runtime.container.sessions import AttachSession, ExecSession, open_attach, open_exec
from runtime.container.stopsignal import signal_number
from runtime.errors import FailedPrecondition, NotFound, PycridError
from runtime.events.model import EventKind, Publisher
from runtime.ids import resolve
from runtime.image import ImageManager
from runtime.linux.pidfd import send_signal, wait_gone
from runtime.linux.proc import is_alive, read_status, start_time
from runtime.locks import KeyedLocks
from runtime.names import NameRegistry
from runtime.process.execspec import exec_spec
from runtime.process.monitorclient import MonitorClient
from runtime.sandbox.processes import Watches
from runtime.sandbox.record import Sandbox
from runtime.store.records import RecordStore

if TYPE_CHECKING:
    from runtime.checkpoint.dump import Checkpointer

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0  # a start not running by then is killed and rolled back
# A set-up slower than this at create (a stuck mount, a profile that never ends) is killed there and
# left to the start: the create must still answer within its caller's deadline.
PREPARE_TIMEOUT = 10.0
MonitorOf = Callable[[Sandbox], MonitorClient]


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
        self._monitor_of = monitor_of
        self._cgroups = cgroups
        self._driver = driver
        self._locks = locks
        self._root = os.path.join(root_dir, "containers")
        self._state = os.path.join(state_dir, "containers")
        self._clock = clock
        self._names = NameRegistry("container")
        self._events = events
        self._exits = ExitTracker(store, cgroups, clock, events, watches)
        self._creator = ContainerCreator(store, images, self._names, cgroups, driver,
                                         CreationPlaces(self._root, self._state), clock, check_image_mount,
                                         events, recursive_readonly_supported=recursive_readonly_supported)
        self._checkpointer = checkpointer  # made at the first checkpoint
        self._prepared: set[str] = set()  # containers whose cgroup is made and init held by their monitor
        for d in (self._root, self._state):
            os.makedirs(d, mode=0o711, exist_ok=True)

    def recover(self) -> None:
        monitored: dict[str, dict[str, int]] = {}  # sandbox id → the containers its monitor runs
        for c in self._store.all():
            if not c.stop_signal:  # a record from before stop signals were decided at create
                self._store.update(c.id, lambda r: replace(r, stop_signal=resolve_stop_signal(
                    r.config, self._images.status(r.image_id))))
            sandbox = self._sandboxes.find(c.sandbox_id)
            if sandbox is not None:
                self._names.reserve(container_record_name(c.config, sandbox), c.id)
                if c.state == State.CREATED and sandbox.ready:
                    self._adopt_start(c, sandbox, monitored)
            c = self.refresh(c.id)
            if c.state == State.RUNNING:
                self._exits.watch(c)

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
        exit_record = read_exit(c.spec.exit_file)
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
    def create(self, sandbox: Sandbox, config: ContainerConfig, timeout: float | None = None) -> str:
        """``timeout``: seconds the caller waits; preparing the start gives up after them."""
        with self._locks.hold(sandbox.id):
            current = self._sandboxes.find(sandbox.id)
            if current is None or not current.ready:
                raise FailedPrecondition(f"sandbox {sandbox.id} is not ready")
            if is_archive(config.image):  # restore a checkpoint (runtime/checkpoint/restore.py)
                from runtime.checkpoint.restore import restored_config, unpacked
                with unpacked(config.image, self._root) as source:
                    restored = restored_config(config, source.checkpointed)
                    container_id = self._creator.create(current, self._resolve_target(restored), source)
            else:
                container_id = self._creator.create(current, self._resolve_target(config))
                self._prepare(self.get(container_id), current,
                              min(PREPARE_TIMEOUT, (timeout or START_TIMEOUT) / 2))
            self._durable(container_id)
            return container_id

    def _durable(self, container_id: str) -> None:
        """The record's fsyncs, run beside the preparation, end before the answer; if they fail,
        the container goes as any failed creation does."""
        try:
            self._store.durable(container_id)
        except PycridError:
            self.remove(container_id)
            raise

    def _prepare(self, c: Container, sandbox: Sandbox, timeout: float) -> None:
        try:
            with spans.phase("prepare"):
                self._make_cgroup(c)
                self._monitor_of(sandbox).prepare(c.spec, timeout)
        except Exception as e:  # noqa: BLE001 - the start does it all again and reports what fails
            log.info("container %s: start not prepared (%s); StartContainer sets it up", c.id[:12], e)
            return
        self._prepared.add(c.id)

    def _make_cgroup(self, c: Container) -> None:
        if c.spec.log_path:
            os.makedirs(os.path.dirname(c.spec.log_path), exist_ok=True)
        self._cgroups.create(c.cgroup, c.config.resources)
        if not c.spec.privileged:  # privileged containers may use every device, as with runc
            self._cgroups.restrict_devices(c.cgroup, container_rules(
                (d.host_path, d.permissions) for d in c.spec.devices))

    def start(self, container_id: str, timeout: float | None = None) -> None:
        """``timeout``: seconds the caller waits (the RPC's deadline); the start is bounded by it."""
        c = self.get(container_id)
        with contextlib.ExitStack() as held:
            with spans.phase("locks"):
                held.enter_context(self._locks.hold(c.sandbox_id))
                held.enter_context(self._locks.hold(c.id))
            with spans.phase("records"):
                c = self.refresh(c.id)
                if c.state != State.CREATED:
                    raise FailedPrecondition(f"container {c.id} is {c.state.name.lower()}, not created")
                sandbox = self._sandboxes.get(c.sandbox_id)
            if not sandbox.ready:
                raise FailedPrecondition(f"sandbox {sandbox.id} of container {c.id} is not ready")
            self._start(c, sandbox, min(timeout or START_TIMEOUT, START_TIMEOUT))

    def _start(self, c: Container, sandbox: Sandbox, timeout: float) -> None:
        try:
            if c.id not in self._prepared:  # else made by create (an agent restarted since makes it again)
                with spans.phase("cgroup"):
                    self._make_cgroup(c)
            self._prepared.discard(c.id)
            with spans.phase("monitor"):
                started = self._monitor_of(sandbox).start(c.spec, timeout)
        except Exception as e:
            # The monitor killed what it started; whatever else reached the cgroup goes too, so
            # the container stays removable.
            with contextlib.suppress(PycridError):
                self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
                self._cgroups.remove(c.cgroup)
            why = str(e)
            self._exits.record(c.id, lambda r: replace(r, finished_at=self._clock(), exit_code=128,
                                                       reason="StartError", message=why))
            raise
        pid = started.pid
        with spans.phase("record"):
            record = self._store.update(c.id, lambda r: replace(
                r, started_at=started.started_at, pid=pid, pid_start=start_time(pid) or 0, user=started.user,
                oom_kills_before=self._cgroups.oom_events(c.cgroup)))
        with spans.phase("watch"):
            self._events.publish(EventKind.STARTED, c.id, c.sandbox_id)
            self._exits.watch(record)
        log.info("container %s started, pid %d", c.id, pid)
        _note_oom_score(c, pid)

    def checkpoint(self, container_id: str, location: str, timeout: float) -> None:
        """Writes a checkpoint archive of the running container to ``location``; it keeps running."""
        from runtime.checkpoint.criu import CriuBinary, find_criu
        from runtime.checkpoint.dump import Checkpointer, check_location, subject_of
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(lambda: CriuBinary(find_criu()))
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
            exited = self._exits.wait(c, float(timeout))
        else:
            exited = False
        # Whatever is left in the cgroup goes too: a container in the host's PID namespace can
        # leave processes behind its init.
        self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
        if not exited and not self._exits.wait(c, 10.0):
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
            if c.state == State.CREATED:
                self._discard(c)
            if self._cgroups.pids(c.cgroup):  # a start the agent died in the middle of
                self._cgroups.kill_all(c.cgroup, signal.SIGKILL)
            self._cgroups.remove(c.cgroup)
            shutil.rmtree(os.path.join(self._root, c.id), ignore_errors=True)
            shutil.rmtree(os.path.join(self._state, c.id), ignore_errors=True)
            self._exits.unwatch(c.id)
            self._store.delete(c.id)
            self._events.publish(EventKind.DELETED, c.id, c.sandbox_id)
            sandbox = self._sandboxes.find(c.sandbox_id)
            if sandbox is not None:
                self._names.release(container_record_name(c.config, sandbox), c.id)

    def _discard(self, c: Container) -> None:
        """Its monitor lets go of a prepared init (killed with the cgroup anyway, but the monitor
        holds its sync socket and reaps it)."""
        self._prepared.discard(c.id)
        sandbox = self._sandboxes.find(c.sandbox_id)
        if sandbox is not None:
            with contextlib.suppress(PycridError):  # a monitor that is gone holds nothing
                self._monitor_of(sandbox).discard(c.id)

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
                    self._exits.lost(c.id, why)

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
        return self._exits.refresh(container_id)

    def exited(self, container_id: str) -> None:
        """The agent's watch saw the container's init die: its exit is recorded (and published)
        as soon as the monitor has written it."""
        self._exits.exited(container_id)

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
