from __future__ import annotations

import pytest

from runtime.container.users import (Identity, parse_group, parse_id, parse_passwd, resolve,
                                     split_image_user)
from runtime.errors import InvalidArgument, NotFound

PASSWD = parse_passwd("""root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
default-user:x:1000:1000::/home/default-user:/bin/sh
# comment
broken:x:notanumber:1::/:/bin/sh
""")
GROUP = parse_group("""root:x:0:
www-data:x:33:
default-user:x:1000:
group-defined-in-image:x:50000:default-user
""")


@pytest.mark.parametrize("user, group, supplemental, want", [
    ("", "", (), Identity(0, 0, (0,), "/root")),
    ("1002", "", (), Identity(1002, 0, (0,), "/")),  # numeric, not in passwd: gid 0
    ("www-data", "", (), Identity(33, 33, (33,), "/var/www")),
    ("1003", "1004", (), Identity(1003, 1004, (1004,), "/")),
    ("www-data", "1004", (), Identity(33, 1004, (1004,), "/var/www")),
    ("1000", "", (), Identity(1000, 1000, (1000, 50000), "/home/default-user")),
    ("default-user", "", (1234, 50000), Identity(1000, 1000, (1000, 50000, 1234), "/home/default-user")),
    ("1000", "www-data", (), Identity(1000, 33, (33, 50000), "/home/default-user")),
])
def test_resolve(user: str, group: str, supplemental: tuple[int, ...], want: Identity) -> None:
    assert resolve(user, group, PASSWD, GROUP, supplemental) == want


@pytest.mark.parametrize("user, group, supplemental, want", [
    # Strict: the CRI's groups and the primary gid, none from /etc/group (50000 stays out).
    ("1000", "", (1234,), Identity(1000, 1000, (1000, 1234), "/home/default-user")),
    ("default-user", "", (), Identity(1000, 1000, (1000,), "/home/default-user")),
    ("1000", "www-data", (50000,), Identity(1000, 33, (33, 50000), "/home/default-user")),  # given, so kept
])
def test_resolve_strict(user: str, group: str, supplemental: tuple[int, ...], want: Identity) -> None:
    assert resolve(user, group, PASSWD, GROUP, supplemental, image_groups=False) == want


def test_strict_never_reads_image_memberships_so_a_bad_one_cannot_refuse_it() -> None:
    groups = parse_group("evil:x:4294967295:default-user\n")
    with pytest.raises(InvalidArgument, match="evil"):
        resolve("1000", "", PASSWD, groups)
    assert resolve("1000", "", PASSWD, groups, image_groups=False).additional_gids == (1000,)


def test_unknown_names_are_not_found() -> None:
    with pytest.raises(NotFound, match="nobody-here"):
        resolve("nobody-here", "", PASSWD, GROUP)
    with pytest.raises(NotFound, match="nogroup"):
        resolve("0", "nogroup", PASSWD, GROUP)


@pytest.mark.parametrize("user, group", [(str(2**31), ""), ("0", str(2**32 + 5)), (str(2**63), "")])
def test_ids_beyond_int32_are_refused_not_wrapped(user: str, group: str) -> None:
    with pytest.raises(InvalidArgument, match="out of range"):
        resolve(user, group, PASSWD, GROUP)


def test_supplemental_out_of_range() -> None:
    with pytest.raises(InvalidArgument):
        resolve("0", "", PASSWD, GROUP, (2**31,))


def _passwd(*lines: str) -> str:
    return "\n".join(("root:x:0:0:root:/root:/bin/sh", *lines)) + "\n"


def _group(*lines: str) -> str:
    return "\n".join(("root:x:0:", "users:x:100:", *lines)) + "\n"


# CVE-2024-40635: an id of -1 (or 2^32-1, its unsigned spelling) means "unchanged" to
# setresuid/setresgid, so a container whose image says so would keep running as root. Every id,
# wherever it comes from, is checked; the message names the user or group and the value.
@pytest.mark.parametrize("passwd, group_file, user, group, supplemental, message", [
    (_passwd("evil:x:4294967295:100::/:/bin/sh"), _group(), "evil", "", (),
     r"user 'evil' in /etc/passwd: uid 4294967295 is out of range"),
    (_passwd("evil:x:-1:100::/:/bin/sh"), _group(), "evil", "", (),
     r"user 'evil' in /etc/passwd: uid -1 is out of range"),
    (_passwd("evil:x:2147483648:100::/:/bin/sh"), _group(), "evil", "", (),
     r"user 'evil' in /etc/passwd: uid 2147483648 is out of range"),
    (_passwd("evil:x:1000:-1::/:/bin/sh"), _group(), "evil", "", (),
     r"user 'evil' in /etc/passwd: primary gid -1 is out of range"),
    (_passwd("evil:x:1000:4294967295::/:/bin/sh"), _group(), "1000", "", (),  # found by its uid
     r"user 'evil' in /etc/passwd: primary gid 4294967295 is out of range"),
    (_passwd("u:x:1000:100::/:/bin/sh"), _group("wheel:x:4294967295:"), "u", "wheel", (),
     r"group 'wheel' in /etc/group: gid 4294967295 is out of range"),
    (_passwd("u:x:1000:100::/:/bin/sh"), _group("sneaky:x:-1:u"), "u", "", (),
     r"group 'sneaky' in /etc/group: gid -1 is out of range"),
    (_passwd("u:x:1000:100::/:/bin/sh"), _group("sneaky:x:2147483648:other,u"), "1000", "", (),
     r"group 'sneaky' in /etc/group: gid 2147483648 is out of range"),
    (_passwd(), _group(), "-1", "", (), r"^uid -1 is out of range"),
    (_passwd(), _group(), "0", "-1", (), r"^gid -1 is out of range"),
    (_passwd(), _group(), "0", "4294967295", (), r"^gid 4294967295 is out of range"),
    (_passwd(), _group(), "0", "", (-1,), r"^supplemental gid -1 is out of range"),
], ids=["passwd-uid-2^32-1", "passwd-uid--1", "passwd-uid-2^31", "passwd-gid--1", "passwd-gid-of-numeric-user",
        "named-group", "member-of-group--1", "member-of-group-2^31", "numeric-uid--1", "numeric-gid--1",
        "numeric-gid-2^32-1", "supplemental--1"])
def test_every_id_is_range_checked(passwd: str, group_file: str, user: str, group: str,
                                   supplemental: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve(user, group, parse_passwd(passwd), parse_group(group_file), supplemental)


@pytest.mark.parametrize("passwd, group_file, user, want", [
    (_passwd("top:x:2147483647:2147483647::/:/bin/sh"), _group("big:x:2147483647:top"), "top",
     Identity(2**31 - 1, 2**31 - 1, (2**31 - 1,), "/")),
    # Out-of-range entries nobody uses do not stop anyone else from starting.
    (_passwd("nobody:x:4294967295:4294967295::/:/bin/sh", "u:x:7:100::/:/bin/sh"),
     _group("nogroup:x:4294967295:"), "u", Identity(7, 100, (100,), "/")),
], ids=["at-the-limit", "unused-bad-entries"])
def test_ids_at_the_limit_and_unused_bad_entries_are_fine(passwd: str, group_file: str, user: str,
                                                          want: Identity) -> None:
    assert resolve(user, "", parse_passwd(passwd), parse_group(group_file)) == want


@pytest.mark.parametrize("text, want", [
    ("0", 0), ("1000", 1000), ("-1", -1), ("4294967295", 4294967295),
    ("", None), ("+5", None), (" 7", None), ("7 ", None), ("1_000", None), ("\u0661", None),  # Arabic 1
    ("\u00b2", None), ("0x10", None), ("nginx", None),
])
def test_parse_id_takes_only_ascii_decimals(text: str, want: int | None) -> None:
    assert parse_id(text) == want


def test_passwd_fields_that_int_would_accept_are_not_ids() -> None:
    entries = parse_passwd(_passwd("spaced:x: 7:7::/:/bin/sh", "underscored:x:1_0:10::/:/bin/sh",
                                   "arabic:x:\u0661:1::/:/bin/sh", "negative:x:-1:-1::/:/bin/sh"))
    assert [(e.name, e.uid, e.gid) for e in entries] == [("root", 0, 0), ("negative", -1, -1)]
    groups = parse_group(_group("spaced:x: 9:u"))
    assert [g.name for g in groups] == ["root", "users"]


@pytest.mark.parametrize("user, group", [("\u00b2", ""), ("0", "\u00b2")])
def test_a_non_ascii_digit_is_a_name_not_a_crash(user: str, group: str) -> None:
    with pytest.raises(NotFound):
        resolve(user, group, PASSWD, GROUP)


def test_split_image_user() -> None:
    assert split_image_user("www-data:1004") == ("www-data", "1004")
    assert split_image_user("1000") == ("1000", "")
