"""A pod's shared namespaces, made and pinned.

The pod's monitor, first thing, unshares the pod's new net/ipc/uts namespaces, sets the hostname,
brings `lo` up, applies the pod's sysctls (they act on the namespaces of the writer), mounts the
pod's /dev/shm, and bind-mounts /proc/self/ns/* onto files in the pod's run dir. The bind mounts
keep the namespaces alive whatever becomes of the monitor; containers join them by path.

A pod with a user namespace (``uid_map``/``gid_map``) gets it from a child made for it
(runtime/linux/newuserns.py): the child, root of the new user namespace, unshares and sets up the
net/ipc/uts namespaces, which that user namespace then owns (so root in the pod may configure its
own network, sysctls included), and the monitor pins the child's four namespaces from the host.
The host keeps every capability over them: CNI and the bridge set the network up as for any pod.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import Internal
from runtime.linux import constants as k
from runtime.linux.newuserns import user_namespace_child
from runtime.linux.syscalls import Syscalls
from runtime.store.codec import encode

SHM_SIZE = 64 * 1024 * 1024
_FLAGS = {"net": k.CLONE_NEWNET, "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS}
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


@dataclass(frozen=True)
class PinSpec:
    id: str
    pins: dict[str, str]  # namespace kind (user, net, ipc, uts) → file to pin it on
    hostname: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    shm: str = ""  # where to mount the pod's /dev/shm tmpfs ("" for none)
    # Its owner: in a user namespace pod, the pod's root's host ids. Not an id-mapped bind: tmpfs
    # can be id-mapped only since Linux 6.3, and what the pod writes there is its own either way.
    shm_uid: int = 0
    shm_gid: int = 0
    uid_map: str = ""  # with a "user" pin: the user namespace's maps, as /proc/<pid>/uid_map takes them
    gid_map: str = ""

    def to_dict(self) -> dict[str, Any]:
        return encode(self)


def make(spec: PinSpec, syscalls: Syscalls) -> None:
    if "user" in spec.pins:
        with user_namespace_child(spec.uid_map, spec.gid_map, lambda: _set_up(spec, syscalls), syscalls) as pid:
            _pin(spec.pins, f"/proc/{pid}/ns", syscalls)
    else:
        _set_up(spec, syscalls)
        _pin(spec.pins, "/proc/self/ns", syscalls)
    if spec.shm:
        os.makedirs(spec.shm, mode=0o755, exist_ok=True)
        syscalls.mount("shm", spec.shm, "tmpfs", k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC,
                       f"mode=1777,size={SHM_SIZE},uid={spec.shm_uid},gid={spec.shm_gid}")


def _set_up(spec: PinSpec, syscalls: Syscalls) -> None:
    """The pod's new namespaces, made in and by this process (in a user namespace pod, its root)."""
    flags = 0
    for kind in spec.pins:
        flags |= _FLAGS.get(kind, 0)
    syscalls.unshare(flags)
    if "uts" in spec.pins and spec.hostname:
        syscalls.sethostname(spec.hostname)
    if "net" in spec.pins:
        loopback_up()
    for key, value in spec.sysctls.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)


def _pin(pins: dict[str, str], namespaces: str, syscalls: Syscalls) -> None:
    for kind, path in pins.items():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
        syscalls.mount(f"{namespaces}/{kind}", path, None, k.MS_BIND)


def loopback_up() -> None:
    """A new network namespace has `lo` down; everything local needs it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        current = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", current | _IFF_UP))


def unpin(paths: list[str], syscalls: Syscalls) -> None:
    """Unmounts and removes pins and the shm mount; what is already gone is fine."""
    for path in paths:
        if not path:
            continue
        try:
            syscalls.umount2(path, k.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise Internal(f"unmounting {path}: {e}") from e
        try:
            if os.path.isdir(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise Internal(f"removing {path}: {e}") from e
