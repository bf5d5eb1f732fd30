"""Calls with invalid or hostile arguments: unknown, partial and garbage ids, empty configs, bad
names, and the hostile values of DESIGN §7 (log paths with ../, sysctls with '+' or '=' or not
namespaced, huge strings, uid 2^32-1, negative resources, a missing image).

Whatever pycrid accepts is recorded like a valid object (so it is checked and removed in the end).
Sysctls that must be refused ask for the node's current value of a node-wide sysctl: should
pycrid apply one anyway, the shared machine is left as it was.
"""
from __future__ import annotations

import random
from typing import Any

from cri.api.v1 import api_pb2 as pb
from tests.stress import configs
from tests.stress.call import Call
from tests.stress.valid_calls import ValidCalls
from tests.stress.world import Pod, World

HUGE = 1024 * 1024
UID_MAX = 2**32 - 1
NO_SUCH_STATE: Any = 7  # not a PodSandboxState
_BY_CONTAINER = ("ContainerStatus", "StartContainer", "StopContainer", "RemoveContainer", "ExecSync",
                 "ContainerStats", "ReopenContainerLog", "UpdateContainerResources")
_BY_POD = ("PodSandboxStatus", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStats")
_REQUESTS = {
    "ContainerStatus": lambda i: pb.ContainerStatusRequest(container_id=i, verbose=True),
    "StartContainer": lambda i: pb.StartContainerRequest(container_id=i),
    "StopContainer": lambda i: pb.StopContainerRequest(container_id=i, timeout=-5),
    "RemoveContainer": lambda i: pb.RemoveContainerRequest(container_id=i),
    "ExecSync": lambda i: pb.ExecSyncRequest(container_id=i, cmd=["true"]),
    "ContainerStats": lambda i: pb.ContainerStatsRequest(container_id=i),
    "ReopenContainerLog": lambda i: pb.ReopenContainerLogRequest(container_id=i),
    "UpdateContainerResources": lambda i: pb.UpdateContainerResourcesRequest(container_id=i),
    "PodSandboxStatus": lambda i: pb.PodSandboxStatusRequest(pod_sandbox_id=i, verbose=True),
    "StopPodSandbox": lambda i: pb.StopPodSandboxRequest(pod_sandbox_id=i),
    "RemovePodSandbox": lambda i: pb.RemovePodSandboxRequest(pod_sandbox_id=i),
    "PodSandboxStats": lambda i: pb.PodSandboxStatsRequest(pod_sandbox_id=i),
}


class HostileCalls:
    def __init__(self, world: World, ctx: configs.Context, rng: random.Random, valid: ValidCalls) -> None:
        self.world, self.ctx, self.rng, self.valid = world, ctx, rng, valid

    def bad_id(self) -> Call:
        method = self.rng.choice(_BY_CONTAINER + _BY_POD)
        pick = self.rng.randrange(9)
        other = self.world.pod(self.rng) if method in _BY_CONTAINER else self.world.container(self.rng)
        known = self.world.container(self.rng) if method in _BY_CONTAINER else self.world.pod(self.rng)
        value = ("", "abc", "0" * 64, f"{self.rng.getrandbits(256):064x}", "../../../etc/passwd", "x" * HUGE,
                 "\u00fc\u00df\u2603", other.id if other else "f00", known.id[:5] if known else "f")[pick]
        return Call(method, _REQUESTS[method](value), (value[:64],), False)

    def run_pod(self) -> Call:
        name = self.valid.fresh_name("h")
        config = configs.pod_config(self.ctx, name, shared_pid=self.rng.random() < 0.5)
        key, now = self.ctx.host_sysctl
        pick = self.rng.randrange(14)
        handler = ""
        if pick == 0:
            config = pb.PodSandboxConfig()
        elif pick == 1:
            config.metadata.name = self.rng.choice(("../../x", "a/b", "x" * 300, "\n"))
        elif pick == 2:
            config.linux.sysctls["kernel.shm_rmid_forced"] = f"0+{key}={now}"
        elif pick == 3:
            config.linux.sysctls[key] = now
        elif pick == 4:
            config.linux.sysctls[f"kernel.shm_rmid_forced={now} {key}"] = now
        elif pick == 5:
            config.linux.sysctls[f"../../{key.replace('.', '/')}"] = now
        elif pick == 6:
            config.log_directory = self.rng.choice(("relative/logs", "../../../etc", ""))
        elif pick == 7:
            config.hostname = self.rng.choice(("x" * 100, "bad host", "a\x00b"))
        elif pick == 8:
            config.port_mappings.add(protocol=99, container_port=-1, host_port=70000)
        elif pick == 9:
            config.linux.cgroup_parent = self.rng.choice(("../../../..", "/a\x00b", "x" * 5000))
        elif pick == 10:
            handler = "nosuch"
        elif pick == 11:
            config.dns_config.servers.append("not-an-ip")
        elif pick == 12:
            config.linux.security_context.run_as_user.value = UID_MAX
        else:
            config.annotations["huge"] = "x" * HUGE
        shared = config.linux.security_context.namespace_options.pid == configs.POD_NS
        made = config.metadata.name
        return Call("RunPodSandbox", pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
                    (made[:64],) if made else (), False,
                    after=lambda r: self.world.add_pod(Pod(r.pod_sandbox_id, made, shared, config)))

    def create_container(self) -> Call:
        pod = self.world.pod(self.rng)
        if pod is None or self.rng.random() < 0.1:
            made_up = self.rng.choice(("", f"{self.rng.getrandbits(256):064x}", "nosuch"))
            pod = Pod(made_up, "", False, pb.PodSandboxConfig())
        name = self.valid.fresh_name("x")
        config = configs.container_config(name, ("sleep", "3600"), pod.shared_pid)
        sc, res = config.linux.security_context, config.linux.resources
        pick = self.rng.randrange(15)
        if pick == 0:
            config = pb.ContainerConfig()
        elif pick == 1:
            config.image.image = self.rng.choice((self.ctx.missing_image, "::bad::", "x" * 5000, ""))
        elif pick == 2:
            config.log_path = f"../../{configs.escape_marker(self.ctx.log_root)}-{name}.log"
        elif pick == 3:
            config.log_path = f"/tmp/{configs.escape_marker(self.ctx.log_root)}-{name}.log"
        elif pick == 4:
            sc.run_as_user.value = self.rng.choice((UID_MAX, 2**31, 2**63 - 1))
        elif pick == 5:
            sc.run_as_user.value, sc.run_as_group.value = 0, UID_MAX
        elif pick == 6:
            res.memory_limit_in_bytes, res.cpu_shares = -5, -1
        elif pick == 7:
            res.cpu_quota, res.cpu_period, res.oom_score_adj = -5, -1, 5000
        elif pick == 8:
            res.cpuset_cpus = self.rng.choice(("0-999", "abc", "1,,,2"))
        elif pick == 9:
            config.mounts.add(container_path=self.rng.choice(("../../etc", "/x")),
                              host_path=self.rng.choice(("/nonexistent/chaos", "", "/proc/1/root")))
        elif pick == 10:
            config.command[:] = ["/nonexistent"]
        elif pick == 11:
            config.working_dir = "../../.."
        elif pick == 12:
            config.envs.add(key="HUGE", value="x" * HUGE)
        elif pick == 13:
            config.devices.add(container_path="/dev/x", host_path="/dev/../etc/shadow", permissions="rwm")
        else:
            config.metadata.name = self.rng.choice(("../x", "x" * 300, "a/b"))
        return self.valid.create_in(pod, config, lasting=True, valid=False)

    def exec_sync(self) -> Call | None:
        c = self.world.container(self.rng)
        if c is None:
            return None
        cmd, timeout = self.rng.choice(((), ("/nonexistent",), ("echo", "x" * HUGE), ("true",),
                                        ("sh", "-c", "head -c 17000000 /dev/zero"))), 10
        if cmd == ("true",):
            timeout = -5
        return Call("ExecSync", pb.ExecSyncRequest(container_id=c.id, cmd=list(cmd), timeout=timeout),
                    (c.id, c.pod_id), False, 40.0)

    def update_resources(self) -> Call | None:
        c = self.world.container(self.rng)
        if c is None:
            return None
        linux = self.rng.choice((
            pb.LinuxContainerResources(memory_limit_in_bytes=-5, cpu_shares=-1),
            pb.LinuxContainerResources(cpu_quota=-7, cpu_period=-1),
            pb.LinuxContainerResources(cpuset_cpus="abc"),
            pb.LinuxContainerResources(unified={"../../cgroup.procs": "1"}),
            pb.LinuxContainerResources(memory_limit_in_bytes=4096),
        ))
        return Call("UpdateContainerResources", pb.UpdateContainerResourcesRequest(container_id=c.id, linux=linux),
                    (c.id, c.pod_id), False)

    def image(self) -> Call:
        ref = self.rng.choice(("", "::bad::", self.ctx.missing_image, "x" * 5000, "sha256:" + "0" * 64,
                               "busybox@sha256:zz", "../../../etc/passwd", f"{self.ctx.registry}/../x:1"))
        method = self.rng.choice(("PullImage", "ImageStatus", "RemoveImage"))
        spec = pb.ImageSpec(image=ref)
        request = {"PullImage": pb.PullImageRequest(image=spec), "ImageStatus": pb.ImageStatusRequest(image=spec),
                   "RemoveImage": pb.RemoveImageRequest(image=spec)}[method]
        return Call(method, request, (ref[:64],), False, 60.0)

    def listing(self) -> Call:
        garbage = self.rng.choice(("../", "x" * HUGE, "\u2603"))
        method, request = self.rng.choice((
            ("ListContainers", pb.ListContainersRequest(filter=pb.ContainerFilter(
                id=garbage, pod_sandbox_id=garbage, label_selector={garbage: garbage}))),
            ("ListPodSandbox", pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
                id=garbage, state=pb.PodSandboxStateValue(state=NO_SUCH_STATE)))),
            ("ListContainerStats", pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(
                pod_sandbox_id=garbage))),
            ("ListPodSandboxStats", pb.ListPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(id=garbage))),
            ("ListImages", pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image=garbage)))),
        ))
        return Call(method, request, (), False)

    def on_exited(self) -> Call | None:
        """Calls that need a running container, on one that exits by itself."""
        c = self.world.container(self.rng, lasting=False)
        if c is None:
            return None
        method = self.rng.choice(("ReopenContainerLog", "ExecSync", "StartContainer", "UpdateContainerResources"))
        return Call(method, _REQUESTS[method](c.id), (c.id, c.pod_id), False)
