"""A container's file system changes through a checkpoint: overlay whiteouts and opaque
directories (which need root to make) survive rootfs-diff.tar into the restored upper directory."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from runtime.checkpoint.rootfsdiff import apply_diff, deleted_files, write_diff


def test_whiteouts_opaque_dirs_links_and_owners_carry_over(tmp_path: Path) -> None:
    old = tmp_path / "old-upper"
    (old / "etc" / "conf.d").mkdir(parents=True)
    (old / "etc" / "motd").write_text("hello\n")
    os.chown(old / "etc" / "motd", 1234, 5678)
    os.link(old / "etc" / "motd", old / "etc" / "motd.hard")
    os.symlink("/etc/motd", old / "motd")
    os.mknod(old / "etc" / "passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # deleted from the image
    os.setxattr(old / "etc" / "conf.d", "trusted.overlay.opaque", b"y")  # emptied of the image's files
    diff = write_diff(str(old), str(tmp_path / "rootfs-diff.tar"))
    assert diff.deleted == ("/etc/passwd",)
    assert json.loads(deleted_files(diff)) == ["/etc/passwd"]

    new = tmp_path / "new-upper"
    new.mkdir()
    apply_diff(str(tmp_path / "rootfs-diff.tar"), str(new), diff.digest)
    whiteout = os.lstat(new / "etc" / "passwd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(new / "etc" / "conf.d", "trusted.overlay.opaque") == b"y"
    motd = os.lstat(new / "etc" / "motd")
    assert (new / "etc" / "motd").read_text() == "hello\n" and (motd.st_uid, motd.st_gid) == (1234, 5678)
    assert os.lstat(new / "etc" / "motd.hard").st_ino == motd.st_ino
    assert os.readlink(new / "motd") == "/etc/motd"
