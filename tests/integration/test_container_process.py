"""A container process for real: fork server → pod monitor → starter → init, namespaces, overlay,
logs, exit."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runtime.errors import Internal, InvalidArgument
from runtime.process.initspec import Namespaces, User
from tests.integration.podharness import log_lines, wait_exit


def test_runs_in_its_namespaces_and_records_output_and_exit(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("sh", "-c", "echo out; echo err >&2; hostname; echo $GREETING; "
                                      "cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff|Seccomp):'; "
                                      "ls /proc/1/exe >/dev/null && readlink /proc/1/exe; exit 3"))
    pid = pod.start(spec)
    assert pid > 0
    assert wait_exit(spec)["exit_code"] == 3
    lines = log_lines(spec)
    assert ("stdout", "F", "out") in lines and ("stderr", "F", "err") in lines
    assert ("stdout", "F", "testbox") in lines and ("stdout", "F", "hi") in lines
    text = " ".join(t for _, _, t in lines)
    assert "NoNewPrivs:\t1" in text and "Seccomp:\t2" in text
    assert "CapEff:\t0000000000000021" in text  # CHOWN (0) + KILL (5)
    assert ("stdout", "F", "/bin/sh") in lines  # our shell is PID 1 of its own namespace
    assert not os.listdir(spec.rootfs), "the overlay must not be visible on the host"


def test_user_and_groups_from_the_containers_passwd(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("id",), user=User(username="guest"))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    assert log_lines(spec) == [("stdout", "F", "uid=1234(guest) gid=1234(guest) groups=1234(guest),5000(extra)")]


def test_a_signal_is_recorded_as_128_plus_signal(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("sleep", "30"))
    os.kill(pod.start(spec), 9)
    exit_record = wait_exit(spec)
    assert (exit_record["exit_code"], exit_record["signal"]) == (137, 9)


def test_a_missing_executable_fails_the_start_with_the_reason(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("no-such-binary",))
    with pytest.raises(Internal, match="no-such-binary.*not found"):
        pod.start(spec)
    assert not os.path.exists(spec.exit_file)


def test_no_fds_leak_into_the_container(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("ls", "/proc/self/fd"))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    assert sorted(t for _, _, t in log_lines(spec)) == ["0", "1", "2", "3"]  # 3 is ls's own dir fd


def test_read_only_rootfs(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("sh", "-c", "echo x > /file"), readonly_rootfs=True)
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] != 0
    assert "Read-only file system" in Path(spec.log_path).read_text()


def test_host_namespaces_are_kept(pod, tmp_path, lower) -> None:
    spec = pod.spec("c1", ("readlink", "/proc/self/ns/net"),
                    namespaces=Namespaces(net="host", ipc="host", uts="host"), hostname="")
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    assert log_lines(spec)[0][2] == os.readlink("/proc/self/ns/net")


def test_an_etc_passwd_symlink_is_resolved_inside_the_container(pod, tmp_path, lower) -> None:
    """CVE-2022-23648/CVE-2024-9676: the image's /etc/passwd links to an absolute path that exists
    on the host with a user of its own; the lookup must happen in the container's root, where that
    path does not exist, so the user is not found rather than read from the host."""
    host_file = tmp_path / "host-passwd"
    host_file.write_text("hostonly:x:4242:4242::/:/bin/sh\n")
    image = tmp_path / "image-layer"
    (image / "etc").mkdir(parents=True)
    (image / "etc" / "passwd").symlink_to(host_file)
    spec = pod.spec("c1", ("id",), user=User(username="hostonly"),
                    lowerdirs=(str(image), str(lower)))
    with pytest.raises(InvalidArgument, match="hostonly.*not found"):
        pod.start(spec)


def test_a_fifo_for_etc_passwd_fails_the_start_at_once(pod, tmp_path, lower) -> None:
    """A plain open() of a FIFO waits for a writer: the container would never start. The image's
    accounts files are opened without blocking and refused unless regular (runtime/linux/imagefile.py)."""
    image = tmp_path / "image-layer"
    (image / "etc").mkdir(parents=True)
    os.mkfifo(image / "etc" / "passwd")
    spec = pod.spec("c1", ("id",), user=User(username="guest"), lowerdirs=(str(image), str(lower)))
    started = time.monotonic()
    with pytest.raises(InvalidArgument, match="/etc/passwd in the container is a FIFO, not a regular file"):
        pod.start(spec)
    assert time.monotonic() - started < 5
    assert not os.path.exists(spec.exit_file)


@pytest.mark.parametrize("uid", ["4294967295", "-1", "2147483648"])
def test_a_passwd_uid_out_of_range_is_refused_not_run_as_root(pod, tmp_path, uid) -> None:
    """CVE-2024-40635: setresuid(-1, ...) means "unchanged", so a uid that wraps to -1 would
    leave the container running as root. Refused at start, with the user and value named."""
    image = tmp_path / "image-layer"
    (image / "etc").mkdir(parents=True)
    (image / "etc" / "passwd").write_text(f"evil:x:{uid}:1234::/:/bin/sh\n")
    spec = pod.spec("c1", ("id",), user=User(username="evil"), lowerdirs=(str(image), str(pod.lower)))
    with pytest.raises(InvalidArgument, match=rf"evil.*{uid}.*out of range"):
        pod.start(spec)
    assert not os.path.exists(spec.exit_file)


def test_an_oom_score_adj_it_may_not_lower_to_is_clamped_not_fatal(pod, tmp_path) -> None:
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine's bounding set lacks (as
    on nodes that restrict it): the container starts at the lowest score it may have (the kubelet's
    in-place resize specs failed here with PermissionError)."""
    parent = int(Path("/proc/self/oom_score_adj").read_text())
    lower = pod.spec("c1", ("sleep", "30"), oom_score_adj=parent - 500)
    higher = pod.spec("c2", ("sleep", "30"), oom_score_adj=parent + 500)
    got = [int(Path(f"/proc/{pod.start(s)}/oom_score_adj").read_text()) for s in (lower, higher)]
    sys_resource = 24
    can_lower = bool(int(Path("/proc/self/status").read_text().split("CapBnd:")[1].split()[0], 16)
                     & (1 << sys_resource))
    assert got == [parent - 500 if can_lower else parent, parent + 500]


def test_init_leads_a_session_of_its_own(pod, tmp_path, lower) -> None:
    """As runc's: CRIU refuses a tree whose session leader is outside its PID namespace."""
    spec = pod.spec("c1", ("sh", "-c", "read -r _ _ _ _ _ sid _ </proc/1/stat; echo $sid"))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    assert log_lines(spec) == [("stdout", "F", "1")]  # the session id, as its namespace numbers it
