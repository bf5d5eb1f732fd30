"""RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox, StreamPodSandboxes,
UpdatePodSandboxResources."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

from cri.api.v1 import api_pb2 as pb
from cri.containers import container_status
from cri.convert_sandbox import id_mapping_message, pod_resources, sandbox_config
from cri.filters import id_matches, matches
from cri.managers import Containers
from cri.streams import batches
from runtime.cgroups.resources import Resources
from runtime.container.model import NamespaceMode, UserNamespace
from runtime.sandbox.manager import SandboxManager
from runtime.sandbox.record import Sandbox
from runtime.store.codec import encode

_NAMESPACE_MODE = {NamespaceMode.POD: pb.POD, NamespaceMode.CONTAINER: pb.CONTAINER, NamespaceMode.NODE: pb.NODE,
                   NamespaceMode.TARGET: pb.TARGET}

class SandboxRpcs:
    sandboxes: SandboxManager
    containers: Containers

    def RunPodSandbox(self, request: pb.RunPodSandboxRequest) -> pb.RunPodSandboxResponse:
        config = sandbox_config(request.config, request.runtime_handler)
        return pb.RunPodSandboxResponse(pod_sandbox_id=self.sandboxes.run(config))

    def StopPodSandbox(self, request: pb.StopPodSandboxRequest) -> pb.StopPodSandboxResponse:
        self.sandboxes.stop(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    def RemovePodSandbox(self, request: pb.RemovePodSandboxRequest) -> pb.RemovePodSandboxResponse:
        self.sandboxes.remove(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    def PodSandboxStatus(self, request: pb.PodSandboxStatusRequest) -> pb.PodSandboxStatusResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        # With a timestamp, a kubelet running EventedPLEG takes the pod's containers from this
        # response alone (as containerd sends them), not from ListContainers.
        timestamp = time.time_ns()
        response = pb.PodSandboxStatusResponse(
            status=sandbox_status(sandbox), timestamp=timestamp,
            containers_statuses=[container_status(c) for c in self.containers.in_pod(sandbox.id)])
        if request.verbose:
            response.info["info"] = json.dumps({"id": sandbox.id, "config": encode(sandbox.config),
                                                "paths": encode(sandbox.paths), "pausePid": sandbox.pause_pid,
                                                "monitorPid": sandbox.monitor_pid, "failure": sandbox.failure})
        return response

    def UpdatePodSandboxResources(self, request: pb.UpdatePodSandboxResourcesRequest
                                  ) -> pb.UpdatePodSandboxResourcesResponse:
        """The values in force show in the verbose PodSandboxStatus (its config's overhead and
        resources): the CRI's PodSandboxStatus has no field for them."""
        self.sandboxes.update_resources(
            request.pod_sandbox_id,
            pod_resources(request.overhead) if request.HasField("overhead") else Resources(),
            pod_resources(request.resources) if request.HasField("resources") else Resources())
        return pb.UpdatePodSandboxResourcesResponse()

    def ListPodSandbox(self, request: pb.ListPodSandboxRequest) -> pb.ListPodSandboxResponse:
        return pb.ListPodSandboxResponse(items=self._sandbox_items(request.filter))

    def StreamPodSandboxes(self, request: pb.StreamPodSandboxesRequest) -> Iterator[pb.StreamPodSandboxesResponse]:
        for batch in batches(self._sandbox_items(request.filter)):
            yield pb.StreamPodSandboxesResponse(pod_sandboxes=batch)

    def _sandbox_items(self, f: pb.PodSandboxFilter) -> list[pb.PodSandbox]:
        return [pb.PodSandbox(id=s.id, metadata=_metadata(s), state=_state(s), created_at=s.created_at,
                              labels=s.config.labels, annotations=s.config.annotations,
                              runtime_handler=s.config.runtime_handler)
                for s in sorted(self.sandboxes.list(), key=lambda s: s.created_at)
                if id_matches(s.id, f.id) and matches(s.config.labels, f.label_selector)
                and (not f.HasField("state") or f.state.state == _state(s))]


def sandbox_status(s: Sandbox) -> pb.PodSandboxStatus:
    c = s.config
    return pb.PodSandboxStatus(
        id=s.id, metadata=_metadata(s), state=_state(s), created_at=s.created_at,
        network=pb.PodSandboxNetworkStatus(ip=s.ips[0] if s.ips else "",
                                           additional_ips=[pb.PodIP(ip=ip) for ip in s.ips[1:]]),
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
            network=_NAMESPACE_MODE[c.network_mode], pid=_NAMESPACE_MODE[c.pid_mode],
            ipc=_NAMESPACE_MODE[c.ipc_mode], userns_options=userns_options(c.userns)))),
        labels=c.labels, annotations=c.annotations, runtime_handler=c.runtime_handler)


def userns_options(userns: UserNamespace | None) -> pb.UserNamespace | None:
    """The pod's user namespace as the CRI says it: POD with its mappings; none for the node's."""
    if userns is None:
        return None
    return pb.UserNamespace(mode=pb.POD, uids=[id_mapping_message(userns.uids)],
                            gids=[id_mapping_message(userns.gids)])


def _metadata(s: Sandbox) -> pb.PodSandboxMetadata:
    c = s.config
    return pb.PodSandboxMetadata(name=c.name, uid=c.uid, namespace=c.namespace, attempt=c.attempt)


def _state(s: Sandbox) -> pb.PodSandboxState:
    return pb.SANDBOX_READY if s.ready else pb.SANDBOX_NOTREADY
