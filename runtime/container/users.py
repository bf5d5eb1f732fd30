"""Who a container runs as: the CRI/image user resolved against the container's /etc/passwd and
/etc/group (read inside its rootfs, never through links out of it).

Rules, as containerd and the kubelet apply them: a numeric uid is used as is, even if passwd does
not list it (gid then defaults to the passwd entry's, or 0); a name must be in passwd; an explicit
group (`user:group`) replaces the primary gid; the supplementary groups are the primary gid, the
user's /etc/group memberships, then the CRI's supplemental_groups. SupplementalGroupsPolicy Strict
leaves the /etc/group memberships out (the primary gid stays: it is the process's own group).

Every id that reaches setresuid/setgroups is checked to be in 0..2^31-1, wherever it came from: the
image's files are hostile input, and a uid of -1 (or 2^32-1) there means "unchanged" to the kernel,
so the container would keep running as root (CVE-2024-40635).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidArgument, NotFound

MAX_ID = 2**31 - 1  # larger ids wrap to negative in the kernel's signed views (CVE-2024-40635)
_DECIMAL = re.compile(r"-?[0-9]+", re.ASCII)  # a sign is kept so that "-1" is refused, not skipped


@dataclass(frozen=True)
class PasswdEntry:
    """As written in the file: uid and gid may be out of range; resolve checks the ones it uses."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str = "/"


@dataclass(frozen=True)
class InitialUser:
    """The identity a container's init took just before exec, as it reported it: what
    ContainerStatus.user shows ("initially attached"; the process may change it later)."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def check_id(value: int, what: str) -> int:
    if not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"{what} {value} is out of range 0..{MAX_ID}")
    return value


def parse_id(text: str) -> int | None:
    """The number an ASCII decimal (sign included) spells, unchecked; None for anything else (a name).

    Not int(): it also takes " 7", "1_000" and non-ASCII digits, none of which is an id."""
    return int(text) if _DECIMAL.fullmatch(text) else None


def parse_passwd(text: str) -> list[PasswdEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or line.startswith("#"):
            continue
        uid, gid = parse_id(parts[2]), parse_id(parts[3])
        if uid is not None and gid is not None:
            entries.append(PasswdEntry(parts[0], uid, gid, parts[5] or "/"))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or line.startswith("#"):
            continue
        gid = parse_id(parts[2])
        if gid is not None:
            entries.append(GroupEntry(parts[0], gid, tuple(m for m in parts[3].split(",") if m)))
    return entries


def resolve(user: str, group: str, passwd: list[PasswdEntry], groups: list[GroupEntry],
            supplemental: tuple[int, ...] = (), image_groups: bool = True) -> Identity:
    """`user` is a name or uid ("" means root); `group` a name, gid or "" (the user's own);
    `image_groups`: add the user's memberships in /etc/group (policy Merge, the CRI's default)."""
    user = user or "0"
    uid = parse_id(user)
    if uid is not None:
        check_id(uid, "uid")
        entry = next((p for p in passwd if p.uid == uid), None)
    else:
        entry = next((p for p in passwd if p.name == user), None)
        if entry is None:
            raise NotFound(f"user {user!r} not found in the container's /etc/passwd")
        uid = check_id(entry.uid, f"user {entry.name!r} in /etc/passwd: uid")
    gid = check_id(entry.gid, f"user {entry.name!r} in /etc/passwd: primary gid") if entry else 0
    if group:
        number = parse_id(group)
        if number is not None:
            gid = check_id(number, "gid")
        else:
            match = next((g for g in groups if g.name == group), None)
            if match is None:
                raise NotFound(f"group {group!r} not found in the container's /etc/group")
            gid = check_id(match.gid, f"group {match.name!r} in /etc/group: gid")
    member_of = tuple(check_id(g.gid, f"group {g.name!r} in /etc/group: gid")
                      for g in groups if image_groups and entry and entry.name in g.members)
    # The primary gid is listed too, so dropping a group later cannot widen access (CVE-2023-25173).
    extra = tuple(dict.fromkeys((gid, *member_of, *(check_id(g, "supplemental gid") for g in supplemental))))
    return Identity(uid, gid, extra, entry.home if entry else "/")


def split_image_user(value: str) -> tuple[str, str]:
    """The image config's USER is `user`, `user:group`, `uid` or `uid:gid`."""
    user, _, group = value.partition(":")
    return user, group
