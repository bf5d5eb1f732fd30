"""CRIU's command lines for a container, and the binary run within a deadline (a stand-in script
plays criu here: the real one needs root and a container, tests/e2e/test_checkpoint.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runtime.checkpoint.criu import CriuBinary, DumpPlan, RestorePlan, dump_args, find_criu, log_tail, restore_args
from runtime.errors import DeadlineExceeded, FailedPrecondition


def test_dump_leaves_the_container_running_and_names_what_is_outside_it() -> None:
    args = dump_args(DumpPlan(42, "/img", 4026532385, ("/dev/shm", "/etc/hosts"), ("file[18:3]",), 7))
    text = " ".join(args)
    assert args[:3] == ["dump", "--tree", "42"]
    assert "--leave-running" in args and "--manage-cgroups=ignore" in args
    assert "--timeout 7" in text and "--network-lock skip" in text and "--log-file dump.log" in text
    assert "--external net[4026532385]:extRootNetNS" in text
    assert "--external mnt[/dev/shm]:/dev/shm" in text and "--external mnt[/etc/hosts]:/etc/hosts" in text
    assert "--external file[18:3]" in text


def test_restore_maps_every_key_to_the_new_pod() -> None:
    args = restore_args(RestorePlan("/img", "/rootfs", "/img/pid", 9, (("ipc", "/s/ipcns"), ("uts", "/s/utsns")),
                                    (("/dev/shm", "/s/shm"),), (("file[18:3]", 0), ("pipe:[5]", 1))))
    text = " ".join(args)
    assert args[0] == "restore" and "--restore-detached" in args and "--leave-running" not in args
    assert "--root /rootfs" in text and "--pidfile /img/pid" in text
    assert "--inherit-fd fd[9]:extRootNetNS" in text
    assert "--join-ns ipc:/s/ipcns" in text and "--join-ns uts:/s/utsns" in text
    assert "--external mnt[/dev/shm]:/s/shm" in text
    assert "--inherit-fd fd[0]:file[18:3]" in text and "--inherit-fd fd[1]:pipe:[5]" in text


def test_log_tail_prefers_the_errors(tmp_path: Path) -> None:
    log = tmp_path / "dump.log"
    log.write_text("(0.0) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not "
                   "permitted\n(0.1) collecting\n(0.2) Error (criu/mount.c:1): mnt: no such key\n(0.3) unlocking\n")
    assert log_tail(str(log)) == "(0.2) Error (criu/mount.c:1): mnt: no such key"
    log.write_text("a\nb\n")
    assert log_tail(str(log)) == "a | b"
    assert log_tail(str(tmp_path / "none")).startswith("(no log:")


def fake_criu(tmp_path: Path, body: str) -> str:
    path = tmp_path / "criu"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_failed_run_says_what_criu_logged(tmp_path: Path) -> None:
    criu = CriuBinary(fake_criu(tmp_path, 'echo "(0.1) Error (criu/tty.c:9): tty: external" > dump.log; exit 1'))
    with pytest.raises(FailedPrecondition, match=r"criu dump failed \(exit 1\): .*tty: external"):
        criu.run(["dump", "--log-file", "dump.log"], str(tmp_path), 10)


def test_a_run_that_stops_before_its_log_says_what_criu_printed(tmp_path: Path) -> None:
    criu = CriuBinary(fake_criu(tmp_path, 'echo "Unknown option --network-lock" >&2; exit 1'))
    with pytest.raises(FailedPrecondition, match=r"criu dump failed \(exit 1\): Unknown option --network-lock"):
        criu.run(["dump", "--log-file", "dump.log"], str(tmp_path), 10)


def test_a_run_past_its_deadline_is_ended_with_all_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    criu = CriuBinary(fake_criu(tmp_path, f"sleep 30 & echo $! > {marker}; wait"))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="did not finish within 0.5s"):
        criu.run(["dump", "--log-file", "dump.log"], str(tmp_path), 0.5)
    assert time.monotonic() - started < 5
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "criu's child outlived the deadline"
        time.sleep(0.02)


def test_a_missing_binary_is_a_failed_precondition(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition, match="not installed"):
        find_criu(str(tmp_path / "no-criu"))
    with pytest.raises(FailedPrecondition, match="cannot run"):
        CriuBinary(str(tmp_path / "no-criu")).run(["check"], str(tmp_path), 1)
