"""Streaming sessions for real, below the protocols: exec with and without a terminal, attach to a
TTY container and to one with a stdin pipe (stdin_once), window sizes, and the CRI log still
getting every byte."""
from __future__ import annotations

import os
import select
import time

import pytest

from runtime.container.sessions import open_attach, open_exec
from runtime.errors import FailedPrecondition
from runtime.linux.proc import read_status
from runtime.process.execspec import exec_spec
from runtime.process.initspec import InitSpec
from tests.integration.podharness import PodHarness, log_lines, wait_exit

ALL = frozenset({"stdin", "stdout", "stderr"})




def read_until(fd: int, wanted: bytes, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while wanted not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"never read {wanted!r}; got {got!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"EOF before {wanted!r}; got {got!r}"
            got += chunk
    return got


def read_all(fd: int, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"no EOF; got {got!r}"
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a terminal whose command ended reads EIO
                return got
            if not chunk:
                return got
            got += chunk


def exec_in(pod: PodHarness, spec: InitSpec, pid: int, args: tuple[str, ...], tty: bool = False):  # type: ignore[no-untyped-def]
    status = read_status(pid)
    assert status is not None
    return exec_spec(spec.id, spec, pid, status, args, tty=tty)


def test_exec_with_pipes_streams_stdin_through_and_reports_the_exit_code(pod: PodHarness) -> None:
    spec = pod.spec("c1", ("sleep", "60"))
    pid = pod.start(spec)
    session = open_exec(pod.monitor, exec_in(pod, spec, pid, ("sh", "-c", "cat; echo err >&2; exit 3")), ALL)
    try:
        os.write(session.stdin, b"hello\nworld\n")
        session.close_stdin()
        assert read_all(session.stdout) == b"hello\nworld\n"
        assert read_all(session.stderr) == b"err\n"
        assert session.wait(5) == 3
    finally:
        session.close()


def test_exec_with_a_terminal_made_in_the_container(pod: PodHarness) -> None:
    spec = pod.spec("c1", ("sleep", "60"))
    pid = pod.start(spec)
    session = open_exec(pod.monitor, exec_in(pod, spec, pid, ("sh",), tty=True), ALL)
    try:
        assert session.terminal and session.stdin == session.stdout
        session.resize(33, 101)
        os.write(session.stdin, b"tty; stty size; exit 4\n")
        out = read_all(session.stdout)
        assert b"/dev/pts/" in out and b"33 101" in out, out
        assert session.wait(5) == 4
    finally:
        session.close()


def test_attach_to_a_tty_container_and_resize_it(pod: PodHarness) -> None:
    spec = pod.spec("c1", ("sh",), tty=True, stdin=True)
    pod.start(spec)
    session = open_attach(pod.monitor, "c1", ALL, terminal=True)
    try:
        session.resize(24, 77)
        os.write(session.stdin, b"stty size; tty\n")
        out = read_until(session.stdout, b"/dev/pts/")
        assert b"24 77" in out, out
        os.write(session.stdin, b"exit 5\n")
        read_all(session.stdout)  # EOF once the container is gone
    finally:
        session.close()
    assert wait_exit(spec)["exit_code"] == 5
    assert any("24 77" in text for _, _, text in log_lines(spec)), "the CRI log missed the output"


def test_stdin_once_closes_the_containers_stdin_after_the_first_attach(pod: PodHarness) -> None:
    spec = pod.spec("c1", ("sh", "-c", "cat; echo done"), stdin=True, stdin_once=True)
    pod.start(spec)
    watcher = open_attach(pod.monitor, "c1", frozenset({"stdout"}), terminal=False)
    writer = open_attach(pod.monitor, "c1", frozenset({"stdin"}), terminal=False)
    try:
        os.write(writer.stdin, b"line one\n")
        assert read_until(watcher.stdout, b"line one\n")
        writer.close()  # the first attach with stdin ends: the container reads EOF
        assert read_until(watcher.stdout, b"done\n")
    finally:
        watcher.close()
        writer.close()
    assert wait_exit(spec)["exit_code"] == 0
    assert [text for _, _, text in log_lines(spec)] == ["line one", "done"]


def test_attach_with_stdin_to_a_container_without_stdin_is_refused(pod: PodHarness) -> None:
    spec = pod.spec("c1", ("sleep", "60"))
    pod.start(spec)
    with pytest.raises(FailedPrecondition, match="no stdin"):
        open_attach(pod.monitor, "c1", ALL, terminal=False)
