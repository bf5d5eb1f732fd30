"""What an exec into a running container must do, decided in the agent from the container's record
and its init's /proc status (so the exec runs as exactly the user the container runs as). The
agent reads that status from the host, so in a pod with a user namespace its ids are host ids:
they are turned back into the pod's, which the exec takes after joining the pod's namespace."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.container.command import check_exec_size
from runtime.container.users import Identity
from runtime.errors import InvalidArgument
from runtime.process.initspec import InitSpec
from runtime.sandbox.userns import container_identity

# mnt last: after it, the host's /proc is gone. cgroup: the container's own on v2 (on v1, the
# host's, which the exec is in already).
NAMESPACES = ("ipc", "uts", "net", "pid", "cgroup", "mnt")


@dataclass(frozen=True)
class ExecSpec:
    id: str
    target_pid: int  # the container's init; its namespaces are joined
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    capabilities: tuple[str, ...]
    ambient_capabilities: tuple[str, ...]
    no_new_privs: bool
    seccomp: str
    seccomp_profile: str
    cgroup: str
    tty: bool = False
    user_namespace: bool = False  # join the container's user namespace (after its mount namespace)


def identity_of(status: dict[str, str]) -> Identity:
    """The real uid/gid and groups from /proc/<pid>/status."""
    try:
        uid = int(status["Uid"].split()[0])
        gid = int(status["Gid"].split()[0])
        groups = tuple(int(g) for g in status.get("Groups", "").split())
    except (KeyError, ValueError, IndexError) as e:
        raise InvalidArgument(f"unreadable process status: {e}") from e
    return Identity(uid, gid, groups)


def exec_spec(exec_id: str, spec: InitSpec, pid: int, status: dict[str, str], args: tuple[str, ...],
              tty: bool = False) -> ExecSpec:
    if not args:
        raise InvalidArgument("exec: the command is empty")
    check_exec_size(args, spec.env, f"exec in container {exec_id}")
    who = identity_of(status)
    if spec.userns is not None and spec.namespaces.user:
        who = container_identity(spec.userns, who)
    return ExecSpec(id=exec_id, target_pid=pid, args=args, env=spec.env, cwd=spec.cwd or "/", uid=who.uid,
                    gid=who.gid, groups=who.additional_gids, capabilities=spec.capabilities,
                    ambient_capabilities=spec.ambient_capabilities,
                    no_new_privs=spec.no_new_privs, seccomp=spec.seccomp,
                    seccomp_profile=spec.seccomp_profile, cgroup=spec.cgroup, tty=tty,
                    user_namespace=bool(spec.namespaces.user))
