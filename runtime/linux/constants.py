"""Kernel ABI numbers the runtime uses, each defined once (values from the uapi headers)."""

import platform

# Namespaces (unshare/setns/clone flags).
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags.
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
# Flags that a bind-remount must carry over, or the kernel refuses to change them (EPERM).
MS_LOCKED_ATTRS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME

# umount2(2) flags.
MNT_FORCE = 0x1
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

# mount_setattr(2).
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x100000

# open_tree(2) and move_mount(2): a detached copy of a mount, attached elsewhere.
AT_EMPTY_PATH = 0x1000
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = 0o2000000  # O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# openat2(2) resolve flags.
RESOLVE_NO_MAGICLINKS = 0x02  # no /proc/<pid>/fd/N, /proc/<pid>/root and the like (ELOOP)
RESOLVE_IN_ROOT = 0x10  # "/" and ".." stop at the starting directory, as if it were the root

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# capget/capset header version with 64-bit sets (two data structs).
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# close_range(2).
CLOSE_RANGE_CLOEXEC = 0x4
CLOSE_RANGE_MAX_FD = 0xFFFFFFFF

# Syscalls glibc has no wrapper for. Numbers from 424 on are shared by all architectures.
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_CLOSE_RANGE = 436
SYS_OPENAT2 = 437
SYS_MOUNT_SETATTR = 442


def pivot_root_number(machine: str | None = None) -> int:
    """pivot_root's number on this machine (it predates the unified table)."""
    arch = machine or platform.machine()
    try:
        return _PIVOT_ROOT[arch]
    except KeyError:
        raise NotImplementedError(f"pivot_root: unsupported architecture {arch!r}") from None
