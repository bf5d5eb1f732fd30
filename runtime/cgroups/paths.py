"""Cgroup naming for the two kubelet cgroup drivers (pure).

A cgroup path here is absolute within a hierarchy ("/kubepods/burstable/pod<uid>/<id>") and is
the same string for every v1 hierarchy and for v2. The drivers differ only in naming:

- cgroupfs: the parent is a path; a container is ``<parent>/<id>`` (as containerd does).
- systemd: the parent is a slice name ("kubepods-burstable-pod<uid>.slice") whose dashes encode
  its ancestors; a container is the scope ``<prefix>-<id>.scope`` inside the expanded slice path.
  Only the naming is systemd's: there is no systemd on these nodes to ask for a unit.
"""

import enum
import functools

from runtime.errors import InvalidArgument

SCOPE_PREFIX = "cri-pycrid"
DEFAULT_CGROUPFS_PARENT = "/pycrid"
DEFAULT_SYSTEMD_PARENT = "pycrid.slice"


class CgroupDriver(enum.StrEnum):
    CGROUPFS = "cgroupfs"
    SYSTEMD = "systemd"


@functools.lru_cache(maxsize=4096)  # pure, and asked again for every cgroup on every scrape
def normalize_path(path: str) -> str:
    """Canonical absolute cgroup path ("/" for the root); InvalidArgument for anything that
    could leave the hierarchy or name something that is not a directory below it."""
    if not path.startswith("/"):
        raise InvalidArgument(f"cgroup path {path!r}: must be absolute")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or "\0" in part:
            raise InvalidArgument(f"cgroup path {path!r}: {part!r} is not allowed")
    return "/" + "/".join(parts)


def _check_name(kind: str, name: str) -> None:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise InvalidArgument(f"{kind} {name!r}: not a single cgroup directory name")


def expand_slice(slice_name: str) -> str:
    """"a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root slice "/"."""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise InvalidArgument(f"cgroup parent {slice_name!r}: not a systemd slice name")
    stem = slice_name.removesuffix(".slice")
    if stem == "-":
        return "/"
    parts = stem.split("-")
    # Empty parts mean a leading, trailing or doubled dash, which systemd rejects too.
    if any(not p for p in parts):
        raise InvalidArgument(f"cgroup parent {slice_name!r}: malformed slice name")
    _check_name("slice", stem)
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def parent_path(driver: CgroupDriver, cgroup_parent: str) -> str:
    """The absolute path of a CRI cgroup_parent; empty means the runtime's default parent."""
    if driver is CgroupDriver.SYSTEMD:
        return expand_slice(cgroup_parent or DEFAULT_SYSTEMD_PARENT)
    parent = cgroup_parent or DEFAULT_CGROUPFS_PARENT
    if not parent.startswith("/"):
        raise InvalidArgument(
            f"cgroup parent {parent!r}: the cgroupfs driver needs an absolute path"
        )
    return normalize_path(parent)


def leaf_names(container_id: str) -> frozenset[str]:
    """What the cgroup of a container (or a sandbox's own process) is called under either driver,
    for finding it when its parent is not known any more."""
    _check_name("container id", container_id)
    return frozenset({container_id, f"{SCOPE_PREFIX}-{container_id}.scope"})


def container_path(driver: CgroupDriver, cgroup_parent: str, container_id: str) -> str:
    """The cgroup of a container (or a sandbox's own process) under a CRI cgroup_parent."""
    _check_name("container id", container_id)
    parent = parent_path(driver, cgroup_parent)
    if driver is CgroupDriver.SYSTEMD:
        leaf = f"{SCOPE_PREFIX}-{container_id}.scope"
    else:
        leaf = container_id
    return parent.rstrip("/") + "/" + leaf
