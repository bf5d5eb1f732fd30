"""Whether this kernel has mount_setattr(2) (Linux 5.12+), which recursive read-only mounts need.

Probed once by the agent at start-up: the answer decides what Status advertises
(RuntimeHandlerFeatures.recursive_read_only_mounts) and whether CreateContainer takes such mounts.
"""

from runtime.linux.syscalls import Syscalls


def has_mount_setattr(syscalls: Syscalls) -> bool:
    """A call that changes nothing (no attribute to set or clear: the kernel returns before looking
    at the mount) succeeds where the syscall exists and we may use it; ENOSYS without it, EPERM
    where we may not mount, and a seccomp filter over us answers either."""
    try:
        syscalls.mount_setattr("/", 0, recursive=False)
    except OSError:
        return False
    return True
