"""Calls with valid arguments, drawn from what the world says exists. Each returns None when there
is nothing to call it on (no pod yet), and the sequence picks another."""
from __future__ import annotations

import random
from typing import Any

from cri.api.v1 import api_pb2 as pb
from tests.stress import configs
from tests.stress.call import SLOW_TIMEOUT, Call
from tests.stress.world import Container, Pod, World


class ValidCalls:
    def __init__(self, world: World, ctx: configs.Context, rng: random.Random, worker: int) -> None:
        self.world, self.ctx, self.rng, self.worker = world, ctx, rng, worker
        self._made = 0

    def fresh_name(self, kind: str) -> str:
        self._made += 1
        return f"chaos-{kind}{self.worker}-{self._made}"

    def run_pod(self) -> Call:
        name, shared = self.fresh_name("p"), self.rng.random() < 0.5
        config = configs.pod_config(self.ctx, name, shared)
        return Call("RunPodSandbox", pb.RunPodSandboxRequest(config=config), (name,), True, SLOW_TIMEOUT,
                    after=lambda r: self.world.add_pod(Pod(r.pod_sandbox_id, name, shared, config)))

    def stop_pod(self) -> Call | None:
        pod = self.world.pod(self.rng)
        if pod is None:
            return None
        return Call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), (pod.id,), True)

    def remove_pod(self) -> Call | None:
        pod = self.world.pod(self.rng)
        if pod is None:
            return None
        return Call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), (pod.id,),
                    True, after=lambda _: self.world.drop_pod(pod.id))

    def create_container(self) -> Call | None:
        pod = self.world.pod_with_room(self.rng)
        if pod is None:
            return None
        lasting = self.rng.random() < 0.6
        command = self.rng.choice(configs.LASTING if lasting else configs.SHORT)
        config = configs.container_config(self.fresh_name("c"), command, pod.shared_pid)
        return self.create_in(pod, config, lasting)

    def create_in(self, pod: Pod, config: pb.ContainerConfig, lasting: bool, valid: bool = True) -> Call:
        """CreateContainer; on success the container is recorded and started next."""
        name = config.metadata.name

        def made(r: Any) -> Call:
            self.world.add_container(Container(r.container_id, pod.id, name, lasting))
            return self.start(r.container_id, pod.id)
        request = pb.CreateContainerRequest(pod_sandbox_id=pod.id, config=config, sandbox_config=pod.config)
        return Call("CreateContainer", request, (pod.id, name), valid, SLOW_TIMEOUT, after=made)

    def start(self, container_id: str, pod_id: str) -> Call:
        return Call("StartContainer", pb.StartContainerRequest(container_id=container_id),
                    (container_id, pod_id), True, SLOW_TIMEOUT)

    def start_any(self) -> Call | None:
        c = self.world.container(self.rng)
        if c is None:
            return None
        return self.start(c.id, c.pod_id)

    def stop_container(self) -> Call | None:
        c, timeout = self.world.container(self.rng), self.rng.choice((0, 1, 2))
        if c is None:
            return None
        return Call("StopContainer", pb.StopContainerRequest(container_id=c.id, timeout=timeout),
                    (c.id, c.pod_id), True, timeout + 30.0)

    def remove_container(self) -> Call | None:
        c = self.world.container(self.rng)
        if c is None:
            return None
        return Call("RemoveContainer", pb.RemoveContainerRequest(container_id=c.id), (c.id, c.pod_id),
                    True, after=lambda _: self.world.drop_container(c.id))

    def exec_sync(self) -> Call | None:
        c = self.world.container(self.rng, lasting=self.rng.random() < 0.9)
        if c is None:
            return None
        cmd, timeout = self.rng.choice(configs.EXECS), self.rng.choice((0, 5))
        if self.rng.random() < 0.1:
            cmd, timeout = ("sleep", "3"), 1  # outlives its timeout
        return Call("ExecSync", pb.ExecSyncRequest(container_id=c.id, cmd=list(cmd), timeout=timeout),
                    (c.id, c.pod_id), True, timeout + 30.0)

    def container_status(self) -> Call | None:
        c = self.world.container(self.rng)
        if c is None:
            return None
        request = pb.ContainerStatusRequest(container_id=c.id, verbose=self.rng.random() < 0.5)
        return Call("ContainerStatus", request, (c.id, c.pod_id), True)

    def pod_status(self) -> Call | None:
        pod = self.world.pod(self.rng)
        if pod is None:
            return None
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id, verbose=self.rng.random() < 0.5)
        return Call("PodSandboxStatus", request, (pod.id,), True)

    def update_resources(self) -> Call | None:
        c = self.world.container(self.rng, lasting=True)
        if c is None:
            return None
        return Call("UpdateContainerResources", pb.UpdateContainerResourcesRequest(
            container_id=c.id, linux=configs.modest_resources()), (c.id, c.pod_id), True)

    def reopen_log(self) -> Call | None:
        c = self.world.container(self.rng, lasting=True)
        if c is None:
            return None
        return Call("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=c.id),
                    (c.id, c.pod_id), True)

    def stats(self) -> Call | None:
        kind = self.rng.randrange(4)
        if kind == 0:
            return Call("ListContainerStats", pb.ListContainerStatsRequest(), (), True)
        if kind == 1:
            return Call("ListPodSandboxStats", pb.ListPodSandboxStatsRequest(), (), True)
        if kind == 2:
            c = self.world.container(self.rng)
            if c is None:
                return None
            return Call("ContainerStats", pb.ContainerStatsRequest(container_id=c.id), (c.id,), True)
        pod = self.world.pod(self.rng)
        if pod is None:
            return None
        return Call("PodSandboxStats", pb.PodSandboxStatsRequest(pod_sandbox_id=pod.id), (pod.id,), True)

    def listing(self) -> Call:
        method, request = self.rng.choice((
            ("ListPodSandbox", pb.ListPodSandboxRequest()),
            ("ListContainers", pb.ListContainersRequest()),
            ("ListImages", pb.ListImagesRequest()),
            ("StreamPodSandboxes", pb.StreamPodSandboxesRequest()),
            ("StreamContainers", pb.StreamContainersRequest()),
            ("ListContainers", pb.ListContainersRequest(filter=pb.ContainerFilter(
                state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)))),
        ))
        return Call(method, request, (), True)

    def node(self) -> Call:
        method, request = self.rng.choice((
            ("Status", pb.StatusRequest(verbose=self.rng.random() < 0.5)),
            ("Version", pb.VersionRequest()),
            ("RuntimeConfig", pb.RuntimeConfigRequest()),
            ("ImageFsInfo", pb.ImageFsInfoRequest()),
        ))
        return Call(method, request, (), True)

    def image(self) -> Call:
        method = self.rng.choices(("PullImage", "ImageStatus", "RemoveImage"), (3, 6, 1))[0]
        spec = pb.ImageSpec(image=configs.IMAGE)
        request = {"PullImage": pb.PullImageRequest(image=spec),
                   "ImageStatus": pb.ImageStatusRequest(image=spec, verbose=self.rng.random() < 0.5),
                   "RemoveImage": pb.RemoveImageRequest(image=spec)}[method]
        return Call(method, request, (configs.IMAGE,), True, SLOW_TIMEOUT)

    def on_removed(self) -> Call | None:
        """Stop/Remove/Status of an ID that was removed: idempotent, or NOT_FOUND for status."""
        gone = self.world.removed_id(self.rng)
        if gone is None:
            return None
        method, request = self.rng.choice((
            ("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=gone)),
            ("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=gone)),
            ("StopContainer", pb.StopContainerRequest(container_id=gone)),
            ("RemoveContainer", pb.RemoveContainerRequest(container_id=gone)),
            ("ContainerStatus", pb.ContainerStatusRequest(container_id=gone)),
        ))
        return Call(method, request, (gone,), True)
