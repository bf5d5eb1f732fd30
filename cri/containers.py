"""CreateContainer, StartContainer, StopContainer, RemoveContainer, ListContainers, StreamContainers,
ContainerStatus, UpdateContainerResources, ReopenContainerLog and CheckpointContainer."""
from __future__ import annotations

import json
from collections.abc import Iterator

from cri.admission import remaining, within_deadline
from cri.api.v1 import api_pb2 as pb
from cri.convert_container import container_config, signal_enum
from cri.convert_sandbox import id_mapping_message, resources
from cri.filters import id_matches, matches
from cri.managers import Containers
from cri.streams import batches
from runtime.cgroups.resources import Resources
from runtime.container.model import Mount
from runtime.container.record import Container, State
from runtime.container.users import InitialUser
from runtime.sandbox.manager import SandboxManager
from runtime.store.codec import encode

_PROPAGATION = {"rprivate": pb.PROPAGATION_PRIVATE, "rslave": pb.PROPAGATION_HOST_TO_CONTAINER,
                "rshared": pb.PROPAGATION_BIDIRECTIONAL}
_STATE = {State.CREATED: pb.CONTAINER_CREATED, State.RUNNING: pb.CONTAINER_RUNNING,
          State.EXITED: pb.CONTAINER_EXITED, State.UNKNOWN: pb.CONTAINER_UNKNOWN}


class ContainerRpcs:
    sandboxes: SandboxManager
    containers: Containers

    def CreateContainer(self, request: pb.CreateContainerRequest) -> pb.CreateContainerResponse:
        config = container_config(request.config)
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        return pb.CreateContainerResponse(container_id=self.containers.create(sandbox, config, remaining()))

    def StartContainer(self, request: pb.StartContainerRequest) -> pb.StartContainerResponse:
        self.containers.start(request.container_id, remaining())
        return pb.StartContainerResponse()

    def StopContainer(self, request: pb.StopContainerRequest) -> pb.StopContainerResponse:
        self.containers.stop(request.container_id, request.timeout)
        return pb.StopContainerResponse()

    def RemoveContainer(self, request: pb.RemoveContainerRequest) -> pb.RemoveContainerResponse:
        self.containers.remove(request.container_id)
        return pb.RemoveContainerResponse()

    def ContainerStatus(self, request: pb.ContainerStatusRequest) -> pb.ContainerStatusResponse:
        c = self.containers.get(request.container_id)
        response = pb.ContainerStatusResponse(status=container_status(c))
        if request.verbose:
            response.info["info"] = json.dumps({"id": c.id, "sandboxID": c.sandbox_id, "pid": c.pid,
                                                "cgroup": c.cgroup, "spec": encode(c.spec)})
        return response

    def ListContainers(self, request: pb.ListContainersRequest) -> pb.ListContainersResponse:
        return pb.ListContainersResponse(containers=self._container_items(request.filter))

    def StreamContainers(self, request: pb.StreamContainersRequest) -> Iterator[pb.StreamContainersResponse]:
        for batch in batches(self._container_items(request.filter)):
            yield pb.StreamContainersResponse(containers=batch)

    def UpdateContainerResources(self, request: pb.UpdateContainerResourcesRequest
                                 ) -> pb.UpdateContainerResourcesResponse:
        new = resources(request.linux) if request.HasField("linux") else Resources()
        self.containers.update_resources(request.container_id, new)
        return pb.UpdateContainerResourcesResponse()

    def CheckpointContainer(self, request: pb.CheckpointContainerRequest) -> pb.CheckpointContainerResponse:
        """CRIU dumps the running container into the archive at ``location`` (runtime/checkpoint);
        the request's timeout (0: the runtime's default), within the call's deadline, bounds it."""
        from runtime.checkpoint.dump import DEFAULT_TIMEOUT  # the checkpoint code loads when first used
        timeout = within_deadline(float(request.timeout) if request.timeout > 0 else DEFAULT_TIMEOUT)
        self.containers.checkpoint(request.container_id, request.location, timeout)
        return pb.CheckpointContainerResponse()

    def ReopenContainerLog(self, request: pb.ReopenContainerLogRequest) -> pb.ReopenContainerLogResponse:
        self.containers.reopen_log(request.container_id)
        return pb.ReopenContainerLogResponse()

    def ExecSync(self, request: pb.ExecSyncRequest) -> pb.ExecSyncResponse:
        timeout = float(request.timeout) if request.timeout > 0 else remaining()
        result = self.containers.exec_sync(request.container_id, tuple(request.cmd),
                                           None if timeout is None else within_deadline(timeout))
        return pb.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)

    def _container_items(self, f: pb.ContainerFilter) -> list[pb.Container]:
        return [pb.Container(id=c.id, pod_sandbox_id=c.sandbox_id, metadata=_metadata(c),
                             image=pb.ImageSpec(image=c.shown_image, user_specified_image=c.config.user_image),
                             image_ref=c.image_ref,
                             image_id=c.image_id, state=_STATE[c.state], created_at=c.created_at,
                             labels=c.config.labels, annotations=c.config.annotations)
                for c in sorted(self.containers.list(), key=lambda c: c.created_at)
                if id_matches(c.id, f.id) and id_matches(c.sandbox_id, f.pod_sandbox_id)
                and matches(c.config.labels, f.label_selector)
                and (not f.HasField("state") or f.state.state == _STATE[c.state])]


def container_status(c: Container) -> pb.ContainerStatus:
    r = c.config.resources
    return pb.ContainerStatus(
        id=c.id, metadata=_metadata(c), state=_STATE[c.state], created_at=c.created_at,
        started_at=c.started_at, finished_at=c.finished_at, exit_code=c.exit_code,
        image=pb.ImageSpec(image=c.shown_image, user_specified_image=c.config.user_image), image_ref=c.image_ref,
        image_id=c.image_id,
        reason=c.reason, message=c.message, labels=c.config.labels, annotations=c.config.annotations,
        mounts=[_mount(c, m) for m in c.config.mounts],
        log_path=c.spec.log_path,
        user=_user(c.user),
        stop_signal=signal_enum(c.stop_signal),
        resources=pb.ContainerResources(linux=pb.LinuxContainerResources(
            cpu_period=r.cpu_period, cpu_quota=r.cpu_quota, cpu_shares=r.cpu_shares,
            memory_limit_in_bytes=r.memory_limit_in_bytes, oom_score_adj=r.oom_score_adj,
            cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
            memory_swap_limit_in_bytes=r.memory_swap_limit_in_bytes, unified=dict(r.unified),
            hugepage_limits=[pb.HugepageLimit(page_size=k, limit=v) for k, v in r.hugepage_limits.items()])))


def _mount(c: Container, m: Mount) -> pb.Mount:
    """A CRI mount as it was asked for, as containerd reports it (not the binds it became); an image
    volume also with the reference of the image it mounts (ImageSpec.image_ref, KEP-5365), resolved
    at create. Its image stays as given: the kubelet's image GC matches it against image ids, which
    is what the kubelet gives."""
    mount = pb.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly,
                     selinux_relabel=m.selinux_relabel, recursive_read_only=m.recursive_read_only,
                     propagation=_PROPAGATION[m.propagation], image_sub_path=m.image_sub_path,
                     uidMappings=[id_mapping_message(i) for i in m.uid_mappings],
                     gidMappings=[id_mapping_message(i) for i in m.gid_mappings])
    if m.image:
        ref = next((i.image_ref for i in c.mounted_images if i.container_path == m.container_path), "")
        mount.image.CopyFrom(pb.ImageSpec(image=m.image, image_ref=ref))
    return mount


def _user(user: InitialUser | None) -> pb.ContainerUser | None:
    """None until init has reported it (a created container, or a start the agent missed)."""
    if user is None:
        return None
    return pb.ContainerUser(linux=pb.LinuxContainerUser(uid=user.uid, gid=user.gid,
                                                        supplemental_groups=list(user.groups)))


def _metadata(c: Container) -> pb.ContainerMetadata:
    return pb.ContainerMetadata(name=c.config.name, attempt=c.config.attempt)
