"""Pod sandboxes: shared namespaces, pod files, the network attachment, and their lifecycle.

Each change of a sandbox's state is published as an event with the sandbox's id in place of a
container's (created and started when it is ready, stopped, deleted), as containerd does: the
kubelet's EventedPLEG follows the pod's sandbox that way."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from runtime import spans
from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.paths import CgroupDriver, container_path
from runtime.cgroups.resources import Resources
from runtime.container.model import NamespaceMode
from runtime.container.sessions import connect_port
from runtime.container.sysctls import validate_sysctls
from runtime.errors import FailedPrecondition, NotFound
from runtime.events.model import EventKind, Publisher
from runtime.ids import new_id, resolve
from runtime.linux.idmap import NOT_PROBED, IdmapSupport
from runtime.linux.syscalls import Syscalls
from runtime.locks import KeyedLocks
from runtime.names import NameRegistry, sandbox_name
from runtime.network.in_netns import run_in_netns
from runtime.network.plugin import NetworkPlugin, PodNetwork
from runtime.sandbox import files
from runtime.sandbox.model import SandboxConfig, SandboxPaths
from runtime.sandbox.namespaces import PinSpec, unpin
from runtime.sandbox.processes import PodProcesses, Started
from runtime.sandbox.record import Sandbox
from runtime.sandbox.resize import pod_cgroup, pod_cgroup_limits, write_pod_limits
from runtime.sandbox.userns import map_line, root_owner
from runtime.store.checkpoint import write_atomic
from runtime.store.records import RecordStore

log = logging.getLogger(__name__)
RUNTIME_HANDLERS = ("", "pycrid")


class PodContainers(Protocol):
    """What the sandbox lifecycle needs of the pod's containers."""

    def stop_in_pod(self, sandbox_id: str) -> None: ...

    def remove_in_pod(self, sandbox_id: str) -> None: ...

    def fail_in_pod(self, sandbox_id: str, why: str) -> None: ...


class SandboxManager:
    def __init__(self, store: RecordStore[Sandbox], processes: PodProcesses, network: NetworkPlugin,
                 syscalls: Syscalls, state_dir: str, containers: PodContainers, locks: KeyedLocks,
                 driver: CgroupDriver, clock: Callable[[], int], events: Publisher,
                 cgroups: CgroupManager, idmap: IdmapSupport = NOT_PROBED) -> None:
        self._processes = processes
        self._idmap = idmap
        self._locks = locks
        self._driver = driver
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox")
        self._store = store
        self._names = NameRegistry("sandbox")
        self._network = network
        self._syscalls = syscalls
        self._dir = os.path.join(state_dir, "sandboxes")
        self._containers = containers
        self._clock = clock
        self._events = events
        self._cgroups = cgroups
        os.makedirs(self._dir, mode=0o711, exist_ok=True)

    def recover(self) -> None:
        """After a start: names reserved, the pods' processes watched again (a pod whose monitor
        or pause died meanwhile fails), and monitors of another build re-exec'd in the background."""
        for sandbox in self._store.all():
            self._names.reserve(_name(sandbox.config), sandbox.id)
            if sandbox.ready:
                why = self._processes.watch(sandbox)
                if why:
                    self._fail(sandbox.id, why)
                else:
                    self._background.submit(self._processes.upgrade, sandbox)

    def helper_died(self, key: str) -> None:
        """The Supervisor's callback: a pod's monitor or pause died."""
        kind, _, sandbox_id = key.partition(":")
        self._fail(sandbox_id, f"its {kind} process died")

    def _fail(self, sandbox_id: str, why: str) -> None:
        """A pod whose monitor or pause died is NotReady for good (the kubelet then replaces it);
        its containers are ended and recorded as such."""
        with self._locks.hold(sandbox_id):
            sandbox = self._store.find(sandbox_id)
            if sandbox is None or not sandbox.ready:
                return
            log.warning("sandbox %s failed: %s", sandbox_id[:12], why)
            self._store.update(sandbox_id, lambda s: replace(s, failure=why))
            self._containers.fail_in_pod(sandbox_id, f"sandbox {sandbox_id[:12]} failed: {why}")
            self._processes.kill_pause(sandbox)
            self._events.publish(EventKind.STOPPED, sandbox_id, sandbox_id)

    def get(self, sandbox_id: str) -> Sandbox:
        return self._store.get(resolve(sandbox_id, self._store.ids(), "sandbox"))

    def find(self, sandbox_id: str) -> Sandbox | None:
        try:
            return self.get(sandbox_id)
        except NotFound:
            return None

    def list(self) -> list[Sandbox]:
        return self._store.all()

    def run(self, config: SandboxConfig) -> str:
        if config.runtime_handler not in RUNTIME_HANDLERS:
            raise NotFound(f"runtime handler {config.runtime_handler!r} is not configured")
        validate_sysctls(config.sysctls, config.network_mode, config.ipc_mode)
        if config.userns is not None and not self._idmap.supported:
            raise FailedPrecondition(f"pod {config.namespace}/{config.name}: a user namespace needs id-mapped mounts, "
                                     f"which this node cannot make: {self._idmap.problem}")
        sandbox_id = new_id()
        # The pause process goes under the pod's cgroup, as containerd's sandbox container does:
        # the pod's limits and usage cover it. Named like a container's (a bad parent fails here).
        cgroup = (container_path(self._driver, config.cgroup_parent, sandbox_id)
                  if config.pid_mode == NamespaceMode.POD else "")
        name = _name(config)
        self._names.reserve(name, sandbox_id)
        paths = self._paths(sandbox_id, config)
        sandbox = Sandbox(sandbox_id, config, paths, created_at=self._clock(), cgroup=cgroup, unknown=True)
        with contextlib.ExitStack() as undo, spans.phase("record"):
            undo.callback(self._names.release, name)
            os.makedirs(paths.dir, mode=0o711)
            undo.callback(shutil.rmtree, paths.dir, True)
            # First, so a crash mid-way leaves a record to clean up; its fsyncs run beside the set-up.
            self._store.add(sandbox_id, sandbox, sync_beside=True)
            undo.pop_all()
        with self._locks.hold(sandbox_id):
            try:
                sandbox = self._set_up(sandbox)
                self._store.durable(sandbox_id)
            except BaseException:
                self._roll_back(sandbox_id, sandbox, name)
                raise
        # Both once it is ready: a set-up that fails is undone, and its record never seen.
        self._events.publish(EventKind.CREATED, sandbox_id, sandbox_id)
        self._events.publish(EventKind.STARTED, sandbox_id, sandbox_id)
        log.info("sandbox %s (%s/%s) ready, ips %s", sandbox_id, config.namespace, config.name,
                 ",".join(sandbox.ips) or "-")
        return sandbox_id

    def _roll_back(self, sandbox_id: str, sandbox: Sandbox, name: str) -> None:
        """Undoes a failed set-up. If that fails too, the record stays (unknown, its name reserved)
        so that StopPodSandbox/RemovePodSandbox can finish the job."""
        try:
            # As last recorded: set-up may have added a pause process to kill.
            self._release(self._store.find(sandbox_id) or sandbox)
        except Exception:  # noqa: BLE001 - the set-up error is the one the caller gets
            log.exception("sandbox %s: rolling back a failed set-up failed; left for Stop/Remove",
                          sandbox_id[:12])
            return
        self._store.delete(sandbox_id)
        shutil.rmtree(sandbox.paths.dir, ignore_errors=True)
        self._names.release(name)

    def _set_up(self, sandbox: Sandbox) -> Sandbox:
        config, paths = sandbox.config, sandbox.paths
        pins = {kind: path for kind, path in (("user", paths.userns), ("net", paths.netns), ("ipc", paths.ipcns),
                                              ("uts", paths.utsns)) if path}
        userns = config.userns
        shm_uid, shm_gid = root_owner(userns) if userns else (0, 0)
        spec = PinSpec(sandbox.id, pins, hostname=config.hostname if paths.utsns else "",
                       sysctls=config.sysctls, shm=paths.shm, shm_uid=shm_uid, shm_gid=shm_gid,
                       uid_map=map_line(userns.uids) if userns else "", gid_map=map_line(userns.gids) if userns else "")
        # The monitor pins the namespaces first; a crash before it is recorded leaves it reachable
        # by its socket in the pod's run dir, which Stop/Remove use.
        with spans.phase("monitor"):
            monitor = self._processes.spawn_monitor(sandbox, spec)
        # The pause process and the network only need the pinned namespaces: start both at once.
        pause = (self._background.submit(self._processes.start_pause, sandbox, pins)
                 if config.pid_mode == NamespaceMode.POD else None)
        try:
            with spans.phase("network"):
                ips = self._network.setup(self._pod_network(sandbox)) if paths.netns else ()
            with spans.phase("files"):
                self._write_files(sandbox, ips)
            with spans.phase("pause_wait"):
                started = pause.result() if pause else None
        except BaseException:
            # Recorded even so, so that the undo of the failed run ends them.
            with contextlib.suppress(Exception):
                started = pause.result() if pause else None
                self._store.update(sandbox.id, lambda s: _with_processes(s, monitor, started))
            raise
        # One record write for the processes and the IPs: each is an fsync.
        with spans.phase("record"):
            return self._store.update(sandbox.id,
                                      lambda s: replace(_with_processes(s, monitor, started), ips=ips, unknown=False))

    def stop(self, sandbox_id: str) -> None:
        sandbox = self.find(sandbox_id)
        if sandbox is None:
            return  # the CRI: stopping what is gone succeeds
        with self._locks.hold(sandbox.id):
            self._containers.stop_in_pod(sandbox.id)
            sandbox = self._store.find(sandbox.id)
            if sandbox is None or sandbox.stopped_at:
                return
            self._release(sandbox)
            self._store.update(sandbox.id, lambda s: replace(s, stopped_at=self._clock(), unknown=False))
            self._events.publish(EventKind.STOPPED, sandbox.id, sandbox.id)
        log.info("sandbox %s stopped", sandbox.id[:12])

    def remove(self, sandbox_id: str) -> None:
        sandbox = self.find(sandbox_id)
        if sandbox is None:
            return
        with self._locks.hold(sandbox.id):
            if self._store.find(sandbox.id) is None:
                return  # removed while we waited for its lock
            self.stop(sandbox.id)
            self._containers.remove_in_pod(sandbox.id)
            shutil.rmtree(sandbox.paths.dir, ignore_errors=True)
            # Before the record goes, so that the event carries the pod's last status (the
            # kubelet ignores one without it).
            self._events.publish(EventKind.DELETED, sandbox.id, sandbox.id)
            self._store.delete(sandbox.id)
            self._names.release(_name(sandbox.config), sandbox.id)
        log.info("sandbox %s removed", sandbox.id[:12])

    def _release(self, sandbox: Sandbox) -> None:
        """Frees the pod's processes (monitor, pause) and the pause's cgroup, the network and the
        pinned namespaces; safe to repeat."""
        paths = sandbox.paths
        # The monitor kills the pause and exits while the network comes down.
        ending = self._background.submit(self._processes.end, sandbox)
        try:
            if paths.netns:
                self._network.teardown(self._pod_network(sandbox))
        finally:
            ending.result()
        unpin([paths.netns, paths.ipcns, paths.utsns, paths.shm, paths.userns], self._syscalls)

    def update_resources(self, sandbox_id: str, overhead: Resources, resources: Resources) -> None:
        """In-place pod resize: the pod cgroup's limits written (resize.py says when, and why
        pycrid writes them at all), then the new values recorded, so a refused write changes
        nothing. Under the pod's lock: not racing its stop."""
        sandbox = self.get(sandbox_id)
        with self._locks.hold(sandbox.id):
            sandbox = self.get(sandbox.id)
            path = pod_cgroup(sandbox, self._driver)
            if path:
                write_pod_limits(self._cgroups, path, pod_cgroup_limits(overhead, resources))
            self._store.update(sandbox.id, lambda s: replace(s, config=replace(s.config, overhead=overhead,
                                                                               resources=resources)))
        log.info("sandbox %s: resources updated%s", sandbox.id[:12], f" (cgroup {path})" if path else "")

    def require_ready(self, sandbox_id: str) -> Sandbox:
        sandbox = self.get(sandbox_id)
        if not sandbox.ready:
            raise FailedPrecondition(f"sandbox {sandbox.id} is not ready"
                                     + (f": {sandbox.failure}" if sandbox.failure else ""))
        return sandbox

    def connect_port(self, sandbox_id: str, port: int) -> socket.socket:
        """A TCP connection to ``port`` on the pod's loopback (PortForward), made in its network
        namespace; a hostNetwork pod's is the node's."""
        sandbox = self.require_ready(sandbox_id)
        return connect_port(sandbox.paths.netns, port, run_in_netns)

    def lock(self, sandbox_id: str) -> contextlib.AbstractContextManager[None]:
        """Held by container calls that must not race a stop of their pod."""
        return self._locks.hold(sandbox_id)

    def _paths(self, sandbox_id: str, config: SandboxConfig) -> SandboxPaths:
        d = os.path.join(self._dir, sandbox_id)
        own_net = config.network_mode != NamespaceMode.NODE
        own_ipc = config.ipc_mode != NamespaceMode.NODE
        return SandboxPaths(dir=d, netns=os.path.join(d, "netns") if own_net else "",
                            ipcns=os.path.join(d, "ipcns") if own_ipc else "",
                            utsns=os.path.join(d, "utsns") if own_net else "", pidns="",
                            hosts=os.path.join(d, "hosts"), resolv_conf=os.path.join(d, "resolv.conf"),
                            hostname=os.path.join(d, "hostname"),
                            shm=os.path.join(d, "shm") if own_ipc else "",
                            userns=os.path.join(d, "userns") if config.userns else "")

    def _pod_network(self, sandbox: Sandbox) -> PodNetwork:
        c = sandbox.config
        return PodNetwork(pod_id=sandbox.id, name=c.name, namespace=c.namespace, uid=c.uid,
                          netns_path=sandbox.paths.netns, port_mappings=c.port_mappings, dns=c.dns,
                          cgroup_parent=c.cgroup_parent, annotations=dict(c.annotations))

    def _write_files(self, sandbox: Sandbox, ips: tuple[str, ...]) -> None:
        config, paths = sandbox.config, sandbox.paths
        host_network = not paths.netns
        hostname = socket.gethostname() if host_network else config.hostname
        hosts = _read("/etc/hosts") if host_network else files.hosts_file(hostname, ips)
        resolv = _read("/etc/resolv.conf") if files.is_empty(config.dns) else files.resolv_conf(config.dns)
        for path, text in ((paths.hostname, hostname + "\n"), (paths.hosts, hosts),
                           (paths.resolv_conf, resolv)):
            write_atomic(Path(path), text.encode(), mode=0o644, durable=False)


def _with_processes(sandbox: Sandbox, monitor: Started, pause: Started | None) -> Sandbox:
    """The record with the pod's monitor and the pause process it got, if it needed one."""
    sandbox = replace(sandbox, monitor_pid=monitor.pid, monitor_start=monitor.start_time)
    if pause is None:
        return sandbox
    return replace(sandbox, pause_pid=pause.pid, pause_start=pause.start_time,
                   paths=replace(sandbox.paths, pidns=f"/proc/{pause.pid}/ns/pid"))


def _name(config: SandboxConfig) -> str:
    return sandbox_name(config.name, config.namespace, config.uid, config.attempt)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""

