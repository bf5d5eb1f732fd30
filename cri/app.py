"""The composition root: builds the runtime from the config, serves it, and shuts down cleanly."""
from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cri import server as rpc_server
from cri import socket as cri_socket
from cri.config import Config
from cri.image_service import ImageService
from cri.instrument import Observed
from cri.runtime_service import RuntimeService
from cri.stopsignal import StopSignals
from cri.streaming.server import StreamingRuntime, StreamingServer
from metrics.observe import ObservedContainers, ObservedImages
from metrics.own import OwnMetrics, StopRequests
from runtime.cgroups.heldfiles import HeldFiles
from runtime.cgroups.manager import new_manager
from runtime.cgroups.paths import CgroupDriver
from runtime.container.exits import watched_container
from runtime.container.manager import ContainerManager
from runtime.container.record import Container
from runtime.errors import PycridError
from runtime.events.hub import EventHub
from runtime.events.model import pods_in
from runtime.image import Image, ImageManager, RegistryHost
from runtime.linux.mountapi import has_mount_setattr
from runtime.linux.syscalls import LinuxSyscalls
from runtime.locks import KeyedLocks
from runtime.network.factory import new_network_plugin
from runtime.process.client import ForkServer, connect_or_start
from runtime.process.idmapprobe import probe_idmap
from runtime.process.imagecheck import ForkedImageMountCheck
from runtime.process.monitorclient import MonitorFactory
from runtime.process.supervisor import Supervisor
from runtime.process.unpackclient import ForkedUnpacker
from runtime.reclaim import Reclaimer
from runtime.sandbox.infra import InfraSource
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.processes import PodProcesses
from runtime.sandbox.record import Sandbox
from runtime.stats.reader import StatsReader
from runtime.store.codec import decode, encode
from runtime.store.records import RecordStore
from runtime.version import VERSION

if TYPE_CHECKING:
    from metrics.server import MetricsServer

log = logging.getLogger("pycrid")


def registry_hosts(config: Config) -> dict[str, RegistryHost]:
    return {host: RegistryHost(mirrors=r.mirrors, insecure=r.insecure) for host, r in config.registries.items()}


@dataclass(frozen=True)
class Node:
    """What serve() runs: the two CRI services, the metrics endpoint (unstarted; None when the
    config turns it off) and the watch over the helper processes."""

    runtime: RuntimeService
    images: object
    metrics: MetricsServer | None
    supervisor: Supervisor
    streaming: StreamingServer
    events: EventHub


def build(config: Config, forked: ForkServer | None = None) -> Node:
    """Every component, wired; recovers sandboxes then containers from disk and live processes.
    ``forked``: the fork server the agent forked as it started (runtime/process/forkedstart.py)."""
    started = time.monotonic()
    root, state = Path(config.root), Path(config.state)
    forkserver_log = config.forkserver_log
    forkserver = forked or connect_or_start(config.forkserver_socket, forkserver_log)
    idmap = probe_idmap(forkserver, [str(root), str(state)])  # where layers, volumes and pod files live
    syscalls = LinuxSyscalls()
    rro = has_mount_setattr(syscalls)
    log.info("recursive read-only mounts: %s", "supported" if rro else "not supported (no mount_setattr)")
    net = config.network
    network = new_network_plugin(net.mode, net.pod_cidr, net.bridge, Path(net.cni_conf_dir),
                                 [Path(d) for d in net.cni_bin_dirs], root / "network")
    images = ImageManager(str(root / "images"), registry_hosts(config), unpacker=ForkedUnpacker(forkserver))
    sandbox_store: RecordStore[Sandbox] = RecordStore(root / "sandboxes", "sandbox", encode,
                                                      lambda d: decode(Sandbox, d))
    container_store: RecordStore[Container] = RecordStore(root / "container-records", "container", encode,
                                                          lambda d: decode(Container, d))
    quarantined = {"sandbox": sandbox_store.load_all(), "container": container_store.load_all()}
    # Stats read the same few files of every cgroup on each scrape: keep them open.
    cgroups, driver = new_manager(files=HeldFiles()), CgroupDriver(config.cgroup_driver)
    stops = StopRequests()
    locks = KeyedLocks()
    events = EventHub(pods_in(sandbox_store, container_store))
    # The Supervisor's callback needs the managers, which need the Supervisor: tie the knot.
    deaths: list[Callable[[str], None]] = []
    supervisor = Supervisor(forkserver, forkserver_log, lambda key: deaths[0](key))
    forkserver.recover = supervisor.wait_forkserver
    processes = PodProcesses(MonitorFactory(forkserver), supervisor, cgroups,
                             InfraSource(images, config.sandbox_image), str(state / "sandboxes"))
    containers = ObservedContainers(
        ContainerManager(container_store, sandbox_store, images, processes.monitor, cgroups, driver, locks,
                         config.root, config.state, time.time_ns, ForkedImageMountCheck(forkserver), events,
                         supervisor, recursive_readonly_supported=rro), stops)
    sandboxes = SandboxManager(sandbox_store, processes, network, syscalls, config.state, containers, locks,
                               driver, time.time_ns, events, cgroups, idmap)

    def died(key: str) -> None:
        container_id = watched_container(key)
        if container_id:
            containers.exited(container_id)
        else:
            sandboxes.helper_died(key)
    deaths.append(died)
    supervisor.start()
    sandboxes.recover()
    containers.recover()
    # Unreadable records were moved aside: reclaim by id what they named. A quarantined pod's
    # network goes with the reconcile below (it is not in the store); its containers go here.
    Reclaimer(config.root, config.state, cgroups, syscalls,
              pod_hooks=(containers.remove_in_pod, processes.end_unrecorded)).reclaim(
        quarantined["container"], quarantined["sandbox"])
    released = network.reconcile([s.id for s in sandboxes.list() if s.paths.netns and not s.stopped_at])
    if released:
        log.info("released the network of %d pods that no longer exist", len(released))
    recovery = time.monotonic() - started
    log.info("recovered %d sandboxes and %d containers in %.1f ms", len(sandbox_store.ids()),
             len(container_store.ids()), recovery * 1000)
    own = OwnMetrics(stops, recovery, exited_before=[c.id for c in container_store.all() if c.finished_at],
                     helpers=supervisor.state,
                     quarantined={kind: len(ids) for kind, ids in quarantined.items()})
    reader = StatsReader(cgroups, driver)
    streaming = StreamingServer(config.streaming.address, StreamingRuntime(containers, sandboxes),
                                config.streaming.token_seconds, config.streaming.idle_timeout_seconds)
    runtime = RuntimeService(config, network, sandboxes, containers, reader, observe_rpc=own.observe_rpc,
                             observe_phases=own.observe_phases,
                             helpers=supervisor.state, streaming=streaming, recursive_read_only_mounts=rro,
                             events=events, idmap=idmap)
    image_service = ImageService(ObservedImages(images, own), container_dir=str(root / "containers"),
                                 in_use=containers.image_user)
    server = None
    if config.metrics.address:
        # Only an agent that exports metrics loads the exporter (prometheus_client: ~3 MiB).
        from metrics.collector import ContainerCollector
        from metrics.server import MetricsServer
        server = MetricsServer(config.metrics.address,
                               ContainerCollector(sandbox_store, container_store, reader, own))
    images_observed = Observed(image_service, own.observe_rpc, own.observe_phases)
    return Node(runtime, images_observed, server, supervisor, streaming, events)


def import_images(config: Config, tarball: str) -> list[Image]:
    """Loads a tarball into the image store of a stopped pycrid (the store is the daemon's alone)."""
    cri_socket.prepare(config.socket_path)  # refuses while a live pycrid serves this config
    return ImageManager(str(Path(config.root) / "images"), registry_hosts(config)).import_archive(tarball)


def serve(config: Config, forked: ForkServer | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then drains in-flight RPCs (bounded) and removes the socket."""
    os.makedirs(config.root, mode=0o711, exist_ok=True)
    os.makedirs(config.state, mode=0o700, exist_ok=True)
    os.chmod(config.state, 0o700)
    path = config.socket_path
    # Handled from before the socket is bound: it listens from add_insecure_port on, so a client can
    # reach us (and a supervisor may stop us) before the server starts; the default action would
    # kill us there and leave the socket behind.
    stop = StopSignals()
    cri_socket.prepare(path)

    node = build(config, forked)
    runtime, metrics = node.runtime, node.metrics
    server = rpc_server.build(runtime, node.images, workers=config.max_rpc_workers)
    if server.add_insecure_port(f"unix://{path}") == 0:
        raise OSError(f"cannot listen on {config.listen}")
    try:
        if metrics is not None:
            metrics.start()
        node.streaming.start()

        # What start-up made (modules, recovered records) lives as long as
        # the process: out of the collector's sight, a full collection takes ~2 ms instead of ~30 ms,
        # pauses that otherwise land in random RPCs and scrapes.
        gc.collect()
        gc.freeze()
        server.start()
        cri_socket.restrict(path)
        log.info("pycrid %s serving CRI v1 on %s (root %s, state %s, network %s)",
                 VERSION, config.listen, config.root, config.state, runtime.network.name)
        print(f"pycrid: serving CRI v1 on {config.listen}", flush=True)
        log.info("%s received", stop.wait().name)
        node.events.close()  # event streams end now, not at the end of the grace period
        log.info("shutting down: draining in-flight RPCs for up to %.1fs", config.shutdown_grace_seconds)
        server.stop(config.shutdown_grace_seconds).wait()
    finally:
        node.streaming.stop()
        if metrics is not None:
            metrics.stop()
        cri_socket.remove(path)
        release_helpers(node.supervisor)
        log.info("stopped; removed %s", path)


def release_helpers(supervisor: Supervisor) -> None:
    """The pods keep running without us; the fork server stays only as long as any of them (it is
    their monitors' parent), so a node with no pod left has no pycrid process left."""
    supervisor.stop()
    try:
        supervisor.forkserver.linger()
    except PycridError as e:
        log.warning("telling the fork server to exit when idle failed: %s", e)
