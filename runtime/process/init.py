"""Container init: the pod monitor's child that sets up the container around itself and execs.

Order (DESIGN §3): our own session → join the container's cgroup (v1: by ourselves,
runtime/cgroups/selfjoin.py) → join/unshare namespaces → overlay rootfs → standard and CRI mounts →
pivot_root → read-only paths, hostname → oom_score_adj → the pod's user namespace, if it has one →
user → wait until the monitor says we are in the cgroup (v2: it moves us meanwhile; with a cgroup
namespace, v2's default, that wait comes right after the namespaces, see run()) → capabilities and
no_new_privs → seccomp last → close stray fds → execve. Nothing of the image runs before we are in
the cgroup. Each step reports its name on failure so the CRI error says where set-up broke.

The user namespace comes after every mount: its root has no say over our mount namespace, which
the host's user namespace owns (runtime/linux/mounts.py says what is given to the pod's root). The
cgroup namespace is made before it, so the host's user namespace owns that one too.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from runtime.cgroups.manager import CgroupManager
from runtime.cgroups.selfjoin import join_self, open_tasks_files
from runtime.container.users import Identity, parse_group, parse_passwd, resolve
from runtime.errors import PycridError
from runtime.linux import constants as k
from runtime.linux import seccomp
from runtime.linux.capabilities import apply_capabilities, capability_state
from runtime.linux.idmap import idmapped_layers
from runtime.linux.imagefile import ACCOUNTS_LIMIT, read_image_file
from runtime.linux.mounts import apply_mount_plan
from runtime.linux.newuserns import enter_user_namespace
from runtime.linux.proc import containing_mount, mount_points
from runtime.linux.rootfs import closing_fd
from runtime.linux.seccomp_profile import ProfileKind
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.linux.terminal import open_terminal, take_terminal
from runtime.process import protocol
from runtime.process.initspec import HOST, InitSpec
from runtime.process.mountplan import container_plan, layer_staging, overlay_options

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NS_FLAGS = {"net": k.CLONE_NEWNET, "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS}


class SetupError(Exception):
    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase


def start(raw: dict[str, Any], sync: socket.socket, stdio: tuple[int, int, int], cgroups: CgroupManager,
          hold: bool) -> NoReturn:
    """In the pod monitor's fresh child, already in the container's PID namespace: ``raw`` is the
    InitSpec as a dict, built here (not in the long-lived monitor). First our own session, inside
    that namespace (CRIU cannot checkpoint a tree whose session leader is outside it, as runc's
    init): a start the monitor ends (deadline, discard) is one killpg of it, and whatever we fork
    meanwhile goes with us. A TTY container's terminal then becomes this session's.

    On v1 we open the cgroup's tasks files here, where the host's cgroupfs is still in reach (the
    monitor would keep the pages that code writes, ~0.1 MiB each); on v2 there are none and the
    monitor moves us. A failure before set-up begins (the spec, a missing cgroup) is told as the
    monitor would tell its own, with its class (NotFound for a cgroup that is gone)."""
    os.setsid()
    try:
        spec = InitSpec.from_dict(raw)
        tasks = open_tasks_files(cgroups, spec.cgroup) if spec.cgroup else []
    except Exception as e:  # noqa: BLE001 - everything must reach the monitor as a report
        _fail(sync, protocol.error_message(e))
    run(spec, sync, stdio, LinuxSyscalls(), tasks, hold, [("init.spec", time.monotonic())])


def run(spec: InitSpec, sync: socket.socket, stdio: tuple[int, int, int], syscalls: Syscalls,
        tasks: Sequence[int] = (), hold: bool = False, marks: list[tuple[str, float]] | None = None) -> NoReturn:
    """``tasks``: the cgroup's v1 tasks files (start() opened them); [] when the monitor moves us (v2).
    ``hold``: a prepared start (CreateContainer): once set up, say "created" and wait for "go".
    ``marks``: when each step ended (the start's phases, for the agent), to go on from."""
    phase = "start"
    marks = [] if marks is None else marks
    try:
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        phase = "cgroup"
        join_self(tasks)  # first: everything after is charged to the container
        marks.append(("init.cgroup", time.monotonic()))
        phase = "seccomp"
        # Read the profile and load libseccomp while the host filesystem is still reachable.
        bpf = seccomp.profile_for(ProfileKind(spec.seccomp), spec.seccomp_profile or None,
                                  frozenset(spec.capabilities))
        seccomp.preload()
        marks.append(("init.seccomp", time.monotonic()))
        phase = "user_namespace"  # opened while its pin on the host is still in reach
        userns = os.open(spec.namespaces.user, os.O_RDONLY | os.O_CLOEXEC) if spec.namespaces.user else -1
        steps: list[tuple[str, Callable[[], None]]] = [
            ("namespaces", lambda: enter_namespaces(spec, syscalls)),
            ("rootfs", lambda: mount_rootfs(spec, syscalls)),
            ("pivot_root", lambda: pivot_root(spec.rootfs, syscalls)),
            ("finish_rootfs", lambda: finish_rootfs(spec, syscalls)),
        ]
        joined = False
        for phase, step in steps:  # noqa: B007 - the except below reports the phase that failed
            step()
            marks.append((f"init.{phase}", time.monotonic()))
            if phase == "namespaces" and spec.cgroup_namespace:
                # A cgroup namespace is rooted where its maker is: wait in our cgroup before
                # making it, and before the cgroup2 mount of the rootfs step, which shows its root.
                phase = "cgroup"
                wait_joined(sync)
                syscalls.unshare(k.CLONE_NEWCGROUP)
                joined = True
                marks.append(("init.cgroup_wait", time.monotonic()))
        phase = "oom_score_adj"  # before the user namespace: lowering it needs the host's privilege
        set_oom_score_adj(spec.oom_score_adj)
        if userns >= 0:
            phase = "user_namespace"
            with closing_fd(userns):
                enter_user_namespace(userns, syscalls)
        phase = "user"
        identity = resolve_identity(spec, syscalls)
        env = process_env(spec.env, identity)
        phase = "cwd"
        os.makedirs(spec.cwd or "/", exist_ok=True)
        os.chdir(spec.cwd or "/")
        if spec.tty:
            phase = "terminal"
            hand_over_terminal(sync)
        marks.append(("init.user", time.monotonic()))
        # On v2 the monitor moves us into the cgroup while we set up (selfjoin.py); we only go on
        # to drop privileges and exec once it has.
        phase = "cgroup"
        if not joined:
            wait_joined(sync)
            marks.append(("init.cgroup_wait", time.monotonic()))
        if hold:
            # Held here, before privileges drop, as runc's exec FIFO: a seccomp profile may forbid
            # the wait, and nothing of the image has run yet.
            phase = "hold"
            sync.send(protocol.created(marks))
            marks = []
            wait_go(sync)
            marks.append(("init.go", time.monotonic()))
        phase = "security"
        secure(spec.capabilities, spec.ambient_capabilities, spec.no_new_privs, identity, bpf, syscalls)
        marks.append(("init.security", time.monotonic()))
        phase = "exec"
        path = find_executable(spec.args[0], env)
        close_stray_fds(sync.fileno(), syscalls)
        sync.send(protocol.ready(identity.uid, identity.gid, identity.additional_gids, marks))
        os.execve(path, list(spec.args), dict(e.split("=", 1) for e in env))
    except Exception as e:  # noqa: BLE001 - everything must reach the monitor as a report
        _fail(sync, failure_report(phase, e))


def wait_joined(sync: socket.socket) -> None:
    if sync.recv(64) != protocol.JOINED:
        raise SetupError("cgroup", "the pod monitor went away before joining the cgroup")


def wait_go(sync: socket.socket) -> None:
    if sync.recv(64) != protocol.GO:
        raise SetupError("hold", "the pod monitor went away before the container was started")


def hand_over_terminal(sync: socket.socket) -> None:
    """A TTY container: a terminal made in its own /dev/pts becomes its stdio and controlling
    terminal; the master goes to the pod monitor, which logs its output and feeds it what attach
    clients type."""
    master, slave = open_terminal()
    take_terminal(slave)
    socket.send_fds(sync, [protocol.TERMINAL], [master])
    os.close(master)


def failure_report(phase: str, error: Exception) -> dict[str, str]:
    """What init tells the pod monitor when set-up fails at ``phase``. A domain error names its class, so
    that the agent raises the same one (a hostile image is InvalidArgument, not Internal)."""
    if isinstance(error, SetupError):
        return {"error": str(error), "phase": error.phase}
    if isinstance(error, PycridError):
        return {"error": str(error), "phase": phase, "error_class": type(error).__name__}
    return {"error": f"{type(error).__name__}: {error}", "phase": phase}


def _fail(sync: socket.socket, report: dict[str, Any]) -> NoReturn:
    try:
        protocol.send(sync, report)
    finally:
        os._exit(1)


def enter_namespaces(spec: InitSpec, syscalls: Syscalls) -> None:
    """Join the pod's namespaces by path; unshare the new ones; always a private mount namespace."""
    new = k.CLONE_NEWNS
    for name, flag in _NS_FLAGS.items():
        where = getattr(spec.namespaces, name)
        if where == HOST:
            continue
        if not where:
            new |= flag
            continue
        fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, flag)
        finally:
            os.close(fd)
    syscalls.unshare(new)
    # Host mounts propagate in (rslave) and nothing we mount leaks out, unless a mount asks for
    # rshared: its copy must stay a peer of the host's for mounts to flow both ways (as runc's
    # rootfsPropagation does). The rootfs itself is made private below either way.
    shared = any(m.propagation == "rshared" for m in spec.mounts)
    syscalls.mount(None, "/", None, k.MS_REC | (k.MS_SHARED if shared else k.MS_SLAVE))
    if spec.hostname and not spec.namespaces.uts:
        syscalls.sethostname(spec.hostname)


def mount_rootfs(spec: InitSpec, syscalls: Syscalls) -> None:
    os.makedirs(spec.rootfs, exist_ok=True)
    if any(m.propagation == "rshared" for m in spec.mounts):
        # "/" is still the host's peer (enter_namespaces): the bind below would show up on the
        # host, and stay, where the rootfs' parent mount is shared. Made private here, as runc
        # does; an rshared volume on that very mount then propagates no more than with runc.
        rootfs = os.path.realpath(spec.rootfs)
        syscalls.mount(None, containing_mount(rootfs, mount_points()), None, k.MS_PRIVATE)
    # A private mount under the rootfs: what we mount there never reaches the host's peers, and
    # pivot_root (which refuses a shared parent) is happy.
    syscalls.mount(spec.rootfs, spec.rootfs, None, k.MS_BIND | k.MS_REC)
    syscalls.mount(None, spec.rootfs, None, k.MS_PRIVATE)
    with contextlib.ExitStack() as trees:  # id-mapped layers stay open until overlayfs has them
        layers = rootfs_layers(spec, syscalls, trees) if spec.namespaces.user else spec.lowerdirs
        syscalls.mount("overlay", spec.rootfs, "overlay", 0, overlay_options(spec, layers))
    apply_mount_plan(syscalls, container_plan(spec), spec.rootfs)


def rootfs_layers(spec: InitSpec, syscalls: Syscalls, trees: contextlib.ExitStack) -> tuple[str, ...]:
    """The image's layers as trees id-mapped through the pod's user namespace, attached in our
    mount namespace on the container's staging directories (runtime/linux/idmap.py says why)."""
    userns = trees.enter_context(closing_fd(os.open(spec.namespaces.user, os.O_RDONLY | os.O_CLOEXEC)))
    return idmapped_layers(syscalls, spec.lowerdirs, userns, layer_staging(spec.rootfs), trees)


def pivot_root(rootfs: str, syscalls: Syscalls) -> None:
    """pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the new.

    The old root is reached through a directory fd opened before the pivot (as runc does): after
    it, "." would name the new root, and making *that* rslave would undo rshared volumes."""
    old_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(rootfs)
        syscalls.pivot_root(".", ".")
        os.fchdir(old_root)
        # A slave first, so that detaching it unmounts nothing of the host's through shared peers.
        syscalls.mount(None, ".", None, k.MS_SLAVE | k.MS_REC)
        syscalls.umount2(".", k.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def finish_rootfs(spec: InitSpec, syscalls: Syscalls) -> None:
    if spec.readonly_rootfs:
        syscalls.mount(None, "/", None, k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY)


def resolve_identity(spec: InitSpec, syscalls: Syscalls) -> Identity:
    """Reads the container's own passwd and group (we are inside its root now), as the hostile
    files they may be: runtime/linux/imagefile.py. A missing file has no entries."""
    def read(path: str) -> str:
        data = read_image_file(syscalls, "/", path, ACCOUNTS_LIMIT)
        return (data or b"").decode("utf-8", errors="replace")
    user = spec.user
    name = str(user.uid) if user.uid is not None else user.username
    group = str(user.gid) if user.gid is not None else user.group
    return resolve(name, group, parse_passwd(read("/etc/passwd")), parse_group(read("/etc/group")),
                   user.additional_gids, user.image_groups)


def process_env(env: tuple[str, ...], identity: Identity) -> tuple[str, ...]:
    names = {e.split("=", 1)[0] for e in env}
    extra = []
    if "PATH" not in names:
        extra.append(f"PATH={DEFAULT_PATH}")
    if "HOME" not in names:
        extra.append(f"HOME={identity.home}")
    return (*extra, *env)


def set_oom_score_adj(score: int | None) -> None:
    """A score can be raised but not lowered without CAP_SYS_RESOURCE (which a node may not give
    us): then the lowest we may set, as containerd's restrict_oom_score_adj does (the agent logs
    the difference). Unbuffered writes: a refused one must not be written again at close."""
    if score is None:
        return
    fd = os.open("/proc/self/oom_score_adj", os.O_RDWR | os.O_CLOEXEC)
    try:
        current = int(os.read(fd, 32))
        try:
            os.pwrite(fd, str(score).encode(), 0)
        except PermissionError:
            os.pwrite(fd, str(max(score, current)).encode(), 0)
    finally:
        os.close(fd)


def secure(capabilities: tuple[str, ...], ambient: tuple[str, ...], no_new_privs: bool, identity: Identity,
           bpf: seccomp.Filter | None, syscalls: Syscalls) -> None:
    """Becomes `identity` with exactly these capabilities, then no_new_privs and seccomp as asked
    (container init and exec share it)."""

    def switch_user() -> None:
        syscalls.setgroups(identity.additional_gids)
        os.setresgid(identity.gid, identity.gid, identity.gid)
        os.setresuid(identity.uid, identity.uid, identity.uid)

    # Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: load it first (as runc).
    if bpf is not None and not no_new_privs:
        seccomp.load(bpf)
    state = capability_state(frozenset(capabilities), identity.uid, frozenset(ambient))
    apply_capabilities(syscalls, state, switch_user)
    if no_new_privs:
        syscalls.prctl(k.PR_SET_NO_NEW_PRIVS, 1)
        if bpf is not None:
            seccomp.load(bpf)


def find_executable(name: str, env: tuple[str, ...]) -> str:
    if "/" in name:
        if not os.path.isfile(name):
            raise SetupError("exec", f"executable {name!r} not found in the container")
        return name
    path = next((e.split("=", 1)[1] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SetupError("exec", f"executable file {name!r} not found in $PATH={path}")


def close_stray_fds(keep: int, syscalls: Syscalls) -> None:
    """Nothing but stdio may reach the container (CVE-2024-21626); `keep` is close-on-exec."""
    if keep > 3:
        syscalls.close_range(3, keep - 1)
    syscalls.close_range(max(3, keep + 1))
