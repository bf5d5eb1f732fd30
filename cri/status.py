"""Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the node agent is and how it is."""
from __future__ import annotations

import json
from collections.abc import Callable

from cri.api.v1 import api_pb2 as pb
from cri.config import Config
from runtime.conditions import network_condition, runtime_condition
from runtime.linux.idmap import NOT_PROBED, IdmapSupport
from runtime.network.plugin import NetworkPlugin
from runtime.process.supervisor import HelperState
from runtime.version import VERSION

RUNTIME_NAME = "pycrid"
# The kubelet only checks that the CRI version string is non-empty; v1 is the API we speak.
KUBE_API_VERSION = "0.1.0"
RUNTIME_API_VERSION = "v1"


class StatusRpcs:
    def __init__(self, config: Config, network: NetworkPlugin,
                 helpers: Callable[[], HelperState] = lambda: HelperState(True),
                 recursive_read_only_mounts: bool = False, idmap: IdmapSupport = NOT_PROBED) -> None:
        """``recursive_read_only_mounts``: the kernel has mount_setattr (runtime/linux/mountapi.py);
        ``idmap``: whether pods can have user namespaces (runtime/process/idmapprobe.py)."""
        self.config = config
        self.network = network
        self.helpers = helpers
        self.recursive_read_only_mounts = recursive_read_only_mounts
        self.idmap = idmap

    def Version(self, request: pb.VersionRequest) -> pb.VersionResponse:
        return pb.VersionResponse(version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=VERSION, runtime_api_version=RUNTIME_API_VERSION)

    def Status(self, request: pb.StatusRequest) -> pb.StatusResponse:
        helpers = self.helpers()
        conditions = [runtime_condition((self.config.root, self.config.state), helpers.up, helpers.message),
                      network_condition(self.network.status())]
        response = pb.StatusResponse(
            status=pb.RuntimeStatus(conditions=[
                pb.RuntimeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
                for c in conditions]),
            runtime_handlers=[pb.RuntimeHandler(name="", features=pb.RuntimeHandlerFeatures(
                recursive_read_only_mounts=self.recursive_read_only_mounts,
                user_namespaces=self.idmap.supported))],
            # Strict and Merge both, and ContainerStatus.user as the container's init reports it.
            features=pb.RuntimeFeatures(supplemental_groups_policy=True),
        )
        if request.verbose:
            # crictl decodes every info value as JSON, so each value is a JSON document.
            response.info["config"] = json.dumps(self.config.to_json_dict(), sort_keys=True)
            response.info["network"] = json.dumps({"plugin": self.network.name,
                                                   "podCIDR": self.network.pod_cidr})
        return response

    def RuntimeConfig(self, request: pb.RuntimeConfigRequest) -> pb.RuntimeConfigResponse:
        driver = {"cgroupfs": pb.CGROUPFS, "systemd": pb.SYSTEMD}[self.config.cgroup_driver]
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=driver))

    def UpdateRuntimeConfig(self, request: pb.UpdateRuntimeConfigRequest) -> pb.UpdateRuntimeConfigResponse:
        self.network.update_pod_cidr(request.runtime_config.network_config.pod_cidr)
        return pb.UpdateRuntimeConfigResponse()
