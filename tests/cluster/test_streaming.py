"""kubectl's streaming commands through the apiserver and the kubelet to pycrid: exec (plain, with
stdin, with a terminal, and its exit code), attach to a container's stdin and to its terminal,
port-forward, cp, and an ephemeral debug container."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cluster import manifests as m
from tests.cluster.client import Cluster, eventually

FORWARDED_PORT = 18080  # in the cluster's network namespace: nothing else listens there


@pytest.fixture(scope="module")
def web(cluster: Cluster, namespace: str) -> str:
    cluster.apply(m.pod(namespace, "web", m.web_container()))
    cluster.wait_ready(namespace, "pod/web")
    return "web"


def with_terminal(cluster: Cluster, kubectl_args: list[str], typed: str, timeout: float = 60) -> \
        subprocess.CompletedProcess[str]:
    """kubectl run with a terminal as its stdin and stdout (script(1) gives it one), ``typed`` as
    what a user types; the exit status is kubectl's."""
    command = shlex.join(cluster.kubectl_argv(*kubectl_args))
    return subprocess.run(["script", "-qec", command, "/dev/null"], input=typed, capture_output=True, text=True,
                          env=cluster.env, timeout=timeout)


def test_exec(cluster: Cluster, namespace: str, web: str) -> None:
    done = cluster.kubectl("-n", namespace, "exec", web, "--", "sh", "-c", "echo out; echo err >&2")
    assert (done.stdout, done.stderr) == ("out\n", "err\n")


def test_exec_with_stdin(cluster: Cluster, namespace: str, web: str) -> None:
    piped = "".join(f"line {i}\n" for i in range(2000))
    done = cluster.kubectl("-n", namespace, "exec", "-i", web, "--", "sh", "-c", "cat; echo end", input=piped)
    assert done.stdout == piped + "end\n"


def test_exec_exit_code(cluster: Cluster, namespace: str, web: str) -> None:
    done = cluster.kubectl("-n", namespace, "exec", web, "--", "sh", "-c", "exit 7", check=False)
    assert done.returncode == 7, done.stderr
    assert "command terminated with exit code 7" in done.stderr


def test_exec_with_a_terminal(cluster: Cluster, namespace: str, web: str) -> None:
    done = with_terminal(cluster, ["-n", namespace, "exec", "-it", web, "--", "sh"],
                         "tty; test -t 0 && echo stdin-is-a-terminal; exit 5\n")
    assert done.returncode == 5, done.stdout + done.stderr
    assert "/dev/pts/" in done.stdout and "stdin-is-a-terminal" in done.stdout, done.stdout


def test_attach_to_stdin(cluster: Cluster, namespace: str) -> None:
    """A container with stdin open waits for input (it does not read EOF at once), gets what the
    attached client sends, and sees the end of it when the client is done (stdinOnce)."""
    cluster.apply(m.pod(namespace, "reader", m.container(
        "reader", ["sh", "-c", "while read line; do echo got $line; done; echo eof"], stdin=True, stdinOnce=True),
        restartPolicy="Never"))
    cluster.wait_ready(namespace, "pod/reader")
    done = cluster.kubectl("-n", namespace, "attach", "-i", "reader", "-c", "reader", input="one\ntwo\n", timeout=60)
    assert "got one\ngot two\neof\n" in done.stdout, done.stdout + done.stderr

    def exited() -> dict[str, object] | None:
        state = cluster.pod(namespace, "reader")["status"]["containerStatuses"][0]["state"]
        return state.get("terminated")
    terminated = eventually("the reader to exit", exited, 30, cluster.diagnosis)
    assert terminated["exitCode"] == 0
    assert cluster.kubectl("-n", namespace, "logs", "reader").stdout == "got one\ngot two\neof\n"


def test_attach_to_a_terminal(cluster: Cluster, namespace: str) -> None:
    cluster.apply(m.pod(namespace, "terminal", m.container("shell", ["sh"], stdin=True, tty=True),
                        restartPolicy="Never"))
    cluster.wait_ready(namespace, "pod/terminal")
    # The shell exits by itself: script(1) turns the end of what was typed into a ^D once kubectl
    # has read the rest, or after ~2 s regardless; a kubectl slower to start than that (as in the
    # emulated guest) reads it as the end of its own stdin, and the shell never sees it.
    done = with_terminal(cluster, ["-n", namespace, "attach", "-it", "terminal", "-c", "shell"],
                         "tty; echo attached-$((6 * 7)); exit\n")
    assert "/dev/pts/" in done.stdout and "attached-42" in done.stdout, done.stdout + done.stderr


def test_port_forward(cluster: Cluster, namespace: str, web: str) -> None:
    forward = subprocess.Popen(cluster.kubectl_argv("-n", namespace, "port-forward", f"pod/{web}",
                                                    f"{FORWARDED_PORT}:8080"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        assert forward.stdout is not None
        first = forward.stdout.readline()
        assert first.startswith("Forwarding from 127.0.0.1:"), first
        for _ in range(3):  # every connection is a new stream through the same tunnel
            got = cluster.inside("curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{FORWARDED_PORT}/")
            assert (got.returncode, got.stdout) == (0, "hello from web\n"), got.stderr
    finally:
        forward.terminate()
        forward.wait(10)


def test_cp_both_ways(cluster: Cluster, namespace: str, web: str, tmp_path: Path) -> None:
    sent = tmp_path / "sent.bin"
    sent.write_bytes(os.urandom(3 << 20))
    cluster.kubectl("-n", namespace, "cp", str(sent), f"{web}:/tmp/copied.bin")
    remote = cluster.kubectl("-n", namespace, "exec", web, "--", "md5sum", "/tmp/copied.bin").stdout.split()[0]
    local = subprocess.run(["md5sum", str(sent)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert remote == local
    back = tmp_path / "back.bin"
    cluster.kubectl("-n", namespace, "cp", f"{web}:/tmp/copied.bin", str(back))
    assert back.read_bytes() == sent.read_bytes()


def test_ephemeral_debug_container(cluster: Cluster, namespace: str, web: str) -> None:
    """`kubectl debug` adds a container to the running pod, sharing the target's process namespace."""
    cluster.kubectl("-n", namespace, "debug", web, f"--image={m.BUSYBOX}", "-c", "debugger", "--target=web",
                    "--", "sh", "-c", "ps -o comm | grep -x httpd && echo debugged")

    def finished() -> dict[str, object] | None:
        statuses = cluster.pod(namespace, web)["status"].get("ephemeralContainerStatuses", ())
        return next((s["state"]["terminated"] for s in statuses
                     if s["name"] == "debugger" and "terminated" in s["state"]), None)
    terminated = eventually("the debug container to finish", finished, 60, cluster.diagnosis)
    assert terminated["exitCode"] == 0, terminated
    assert cluster.kubectl("-n", namespace, "logs", web, "-c", "debugger").stdout == "httpd\ndebugged\n"
