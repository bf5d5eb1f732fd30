"""The CRI RuntimeService servicer, composed of one class of RPCs per concern."""
from __future__ import annotations

from collections.abc import Callable

from cri.config import Config
from cri.containers import ContainerRpcs
from cri.events import EventRpcs
from cri.exec import StreamingRpcs, StreamingUrls
from cri.managers import Containers
from cri.sandboxes import SandboxRpcs
from cri.stats import StatsRpcs
from cri.status import StatusRpcs
from runtime.cgroups.manager import new_manager
from runtime.cgroups.paths import CgroupDriver
from runtime.events.hub import EventHub
from runtime.linux.idmap import NOT_PROBED, IdmapSupport
from runtime.network.plugin import NetworkPlugin
from runtime.process.supervisor import HelperState
from runtime.sandbox.manager import SandboxManager
from runtime.stats.cpurate import CpuRate
from runtime.stats.reader import StatsReader


class RuntimeService(StatusRpcs, SandboxRpcs, ContainerRpcs, StatsRpcs, StreamingRpcs, EventRpcs):
    """RPCs not defined by any part answer UNIMPLEMENTED (see cri/instrument.py)."""

    def __init__(self, config: Config, network: NetworkPlugin, sandboxes: SandboxManager,
                 containers: Containers, stats_reader: StatsReader | None = None,
                 observe_rpc: Callable[[str, str, float], None] | None = None,
                 helpers: Callable[[], HelperState] = lambda: HelperState(True),
                 streaming: StreamingUrls | None = None, recursive_read_only_mounts: bool = False, *,
                 events: EventHub, idmap: IdmapSupport = NOT_PROBED) -> None:
        StatusRpcs.__init__(self, config, network, helpers, recursive_read_only_mounts, idmap)
        self.streaming = streaming
        self.sandboxes = sandboxes
        self.containers = containers
        self.stats_reader = stats_reader or StatsReader(new_manager(), CgroupDriver(config.cgroup_driver))
        self.cpu_rates = CpuRate()
        self.events = events
        self.observe_rpc = observe_rpc  # picked up by cri/instrument.py
