import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from metrics.process import SelfProcessCollector, open_fd_count


def _families(collector: object) -> dict[str, tuple[str, str, float]]:
    return {m.name: (m.type, m.documentation, m.samples[0].value) for m in collector.collect()}


def test_same_families_and_values_as_prometheus_client() -> None:
    ours = _families(SelfProcessCollector())
    theirs = _families(ProcessCollector(registry=CollectorRegistry()))
    assert ours.keys() == theirs.keys()
    for name, (kind, help_text, value) in theirs.items():
        assert ours[name][:2] == (kind, help_text), name
        if name in ("process_virtual_memory_bytes", "process_resident_memory_bytes"):
            assert ours[name][2] == pytest.approx(value, rel=0.05), name
        elif name == "process_cpu_seconds":
            assert 0 <= value - ours[name][2] < 1.0  # theirs was read after ours
        elif name == "process_open_fds":
            assert abs(ours[name][2] - value) <= 1, "their listing holds one descriptor more"
        else:
            assert ours[name][2] == value, name


def test_counts_descriptors_as_they_are_opened_and_closed() -> None:
    before = open_fd_count("/proc/self/fd")
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]
    try:
        assert open_fd_count("/proc/self/fd") == before + 50
    finally:
        for fd in fds:
            os.close(fd)
    assert open_fd_count("/proc/self/fd") == before


def test_lists_the_directory_when_the_kernel_reports_no_size(tmp_path: Path) -> None:
    for n in range(7):
        (tmp_path / str(n)).touch()
    assert open_fd_count(str(tmp_path), size=lambda _: 0) == 7


def test_a_command_name_with_parentheses_and_spaces(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    me = tmp_path / "42"
    (me / "fd").mkdir(parents=True)
    rest = " ".join(str(n) for n in range(4, 54))  # each field holds its number in proc(5)
    (me / "stat").write_text(f"42 (py crid) (x)) S {rest}\n")
    (me / "limits").write_text("Limit  Soft Limit  Hard Limit  Units\nMax open files  1024  4096  files\n")
    got = _families(SelfProcessCollector(str(tmp_path), "42", fd_count=lambda _: 9))
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    assert got["process_virtual_memory_bytes"][2] == 23
    assert got["process_resident_memory_bytes"][2] == 24 * page
    assert got["process_start_time_seconds"][2] == pytest.approx(22 / ticks + 1700000000)
    assert got["process_cpu_seconds"][2] == pytest.approx((14 + 15) / ticks)
    assert got["process_open_fds"][2] == 9
    assert got["process_max_fds"][2] == 1024
