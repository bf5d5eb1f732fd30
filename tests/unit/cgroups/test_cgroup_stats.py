import os
from pathlib import Path

import pytest

from runtime.cgroups.stats import (
    CgroupStats,
    CpuStats,
    DeviceIO,
    MemoryStats,
    PidsStats,
    Pressure,
    PressureLine,
    parse_blkio,
    parse_flat_keyed,
    parse_io_stat,
    parse_limit,
    parse_pressure,
    working_set,
)
from runtime.cgroups.cgroupfs import read_optional
from runtime.cgroups.stats_reader import read_v1_stats, read_v2_stats
from runtime.errors import Internal

FIXTURES = Path(__file__).parents[2] / "fixtures" / "cgroupfs"
V1_CONTAINER = "/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666/6d1d1e5c2f3b"
V2_CONTAINER = (
    "/kubepods.slice/kubepods-burstable.slice"
    "/kubepods-burstable-pod0a1b2c3d_1111_2222_3333_444455556666.slice"
    "/cri-pycrid-6d1d1e5c2f3b.scope"
)


def test_v1_container_golden():
    # Captured from a real v1 cgroup on this kind of node: 20% CPU quota, 64 MiB limit hit by
    # a 200 MiB allocation (one OOM kill), direct I/O on vda under a blkio throttle rule.
    assert read_v1_stats(str(FIXTURES / "v1"), V1_CONTAINER, clk_tck=100) == CgroupStats(
        cpu=CpuStats(
            usage_ns=443775751, user_ns=270_000_000, system_ns=170_000_000,
            nr_periods=24, nr_throttled=21, throttled_ns=1645512197,
        ),
        memory=MemoryStats(
            usage_bytes=225280, working_set_bytes=225280 - 8192, rss_bytes=110592,
            cache_bytes=12288, mapped_file_bytes=4096, swap_bytes=0,
            max_usage_bytes=67108864, failcnt=0, pgfault=32320, pgmajfault=2,
            local_pgfault=32320, local_pgmajfault=2, limit_bytes=67108864, oom_kills=1,
        ),
        pids=PidsStats(current=1, limit=50),
        io=(DeviceIO(254, 0, read_bytes=4288512, write_bytes=4194304, read_ops=67, write_ops=64),),
    )


def test_v1_local_page_faults_leave_out_descendants(tmp_path):
    # A pod cgroup: its own pgfault counts only tasks in it, total_pgfault its containers too.
    memory = tmp_path / "memory" / "pod"
    memory.mkdir(parents=True)
    (memory / "memory.stat").write_text("pgfault 10\npgmajfault 1\ntotal_pgfault 510\n"
                                        "total_pgmajfault 7\n")
    stats = read_v1_stats(str(tmp_path), "/pod", clk_tck=100).memory
    assert (stats.pgfault, stats.pgmajfault, stats.local_pgfault, stats.local_pgmajfault) == (
        510, 7, 10, 1)


def test_v1_without_recursive_blkio_files_reads_the_plain_ones(tmp_path):
    blkio = tmp_path / "blkio" / "c"
    blkio.mkdir(parents=True)
    (blkio / "blkio.throttle.io_service_bytes").write_text("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n")
    (blkio / "blkio.throttle.io_serviced").write_text("8:0 Read 1\n8:0 Write 0\nTotal 1\n")
    assert read_v1_stats(str(tmp_path), "/c", clk_tck=100).io == (
        DeviceIO(8, 0, read_bytes=4096, write_bytes=0, read_ops=1, write_ops=0),)


def test_v1_root_has_no_limits_and_no_pids_files():
    stats = read_v1_stats(str(FIXTURES / "v1"), "/", clk_tck=100)
    assert stats.memory.limit_bytes is None  # 9223372036854771712 means unlimited
    assert stats.pids == PidsStats()
    assert stats.cpu.usage_ns is not None and stats.memory.working_set_bytes is not None


def test_v2_container_golden():
    assert read_v2_stats(str(FIXTURES / "v2"), V2_CONTAINER) == CgroupStats(
        cpu=CpuStats(
            usage_ns=443_775_000, user_ns=270_000_000, system_ns=173_775_000,
            nr_periods=22, nr_throttled=21, throttled_ns=1_645_512_000,
        ),
        memory=MemoryStats(
            usage_bytes=8323072, working_set_bytes=8323072 - 1622016, rss_bytes=5476352,
            cache_bytes=2240512, mapped_file_bytes=1388544, swap_bytes=0,
            max_usage_bytes=67108864, failcnt=37, pgfault=32320, pgmajfault=2,
            local_pgfault=32320, local_pgmajfault=2, limit_bytes=67108864, oom_kills=1,
        ),
        pids=PidsStats(current=1, limit=50),
        io=(
            DeviceIO(8, 16, read_bytes=1048576, write_bytes=0, read_ops=16, write_ops=0),
            DeviceIO(254, 0, read_bytes=4288512, write_bytes=4194304, read_ops=67, write_ops=64),
        ),
        cpu_pressure=Pressure(
            some=PressureLine(1.52, 0.83, 0.21, 1645512),
            full=PressureLine(1.41, 0.77, 0.19, 1601230),
        ),
        memory_pressure=Pressure(
            some=PressureLine(0.0, 0.12, 0.03, 90211), full=PressureLine(0.0, 0.10, 0.02, 85003)
        ),
        io_pressure=Pressure(
            some=PressureLine(0.0, 0.0, 0.0, 4120), full=PressureLine(0.0, 0.0, 0.0, 4120)
        ),
    )


def test_v2_golden_from_a_real_kernel():
    """Files copied from a cgroup of hack/vm's guest (Debian 12, kernel 6.1, unified hierarchy)
    after a workload: 8 MiB written with O_DIRECT, read back through the page cache, 16 MiB of
    anonymous memory and some CPU; limits memory.max 64 MiB, pids.max 50, cpu.max 100000 100000."""
    assert read_v2_stats(str(FIXTURES / "v2-kernel"), "/pycrid-fixture") == CgroupStats(
        cpu=CpuStats(
            usage_ns=7_139_550_000, user_ns=4_325_981_000, system_ns=2_813_568_000,
            nr_periods=224, nr_throttled=0, throttled_ns=0,
        ),
        memory=MemoryStats(
            usage_bytes=15556608, working_set_bytes=15556608 - 14045184, rss_bytes=0,
            cache_bytes=14958592, mapped_file_bytes=0, swap_bytes=0,
            max_usage_bytes=34775040, failcnt=0, pgfault=2016, pgmajfault=43,
            local_pgfault=2016, local_pgmajfault=43, limit_bytes=64 << 20, oom_kills=0,
        ),
        pids=PidsStats(current=0, limit=50),
        io=(DeviceIO(254, 0, read_bytes=14921728, write_bytes=8388608, read_ops=325, write_ops=9),),
        cpu_pressure=Pressure(
            some=PressureLine(19.06, 10.13, 2.57, 7992653),
            full=PressureLine(19.06, 10.13, 2.57, 7991986),
        ),
        memory_pressure=Pressure(
            some=PressureLine(0.0, 0.0, 0.0, 0), full=PressureLine(0.0, 0.0, 0.0, 0)
        ),
        io_pressure=Pressure(
            some=PressureLine(0.07, 0.10, 0.02, 139806), full=PressureLine(0.07, 0.10, 0.02, 139806)
        ),
    )


def test_v2_root_reads_what_the_root_has():
    stats = read_v2_stats(str(FIXTURES / "v2"), "/")
    assert stats.cpu == CpuStats(usage_ns=241262703000, user_ns=177382399000,
                                 system_ns=63880304000)
    assert stats.memory == MemoryStats()
    assert stats.cpu_pressure.some == PressureLine(0.19, 1.0, 7.54, 61477215)


@pytest.mark.parametrize("reader", [read_v1_stats, read_v2_stats])
def test_missing_files_give_none_not_errors(tmp_path, reader):
    assert reader(str(tmp_path), "/gone") == CgroupStats()


def test_read_optional_reads_big_files_whole(tmp_path):
    # Short reads end the loop early (a seq_file hands out all that fits); a long one must not.
    big = "".join(f"key{i} {i}\n" for i in range(20000))
    (tmp_path / "memory.stat").write_text(big)
    assert len(big) > 2 * 65536
    assert read_optional(str(tmp_path / "memory.stat")) == big
    assert read_optional(str(tmp_path / "absent")) is None


def test_unreadable_file_is_an_internal_error(tmp_path):
    (tmp_path / "c" / "memory.current").mkdir(parents=True)  # EISDIR, not absence
    with pytest.raises(Internal, match="memory.current"):
        read_v2_stats(str(tmp_path), "/c")


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("max\n", None),
        ("9223372036854771712\n", None),
        ("9223372036854710272\n", None),  # the same "unlimited" with 64 KiB pages
        ("67108864\n", 67108864),
        ("50\n", 50),
    ],
)
def test_parse_limit(text, expected):
    assert parse_limit(text) == expected


def test_parse_flat_keyed_skips_lines_without_values():
    assert parse_flat_keyed("a 1\n\nb 2\nlonely\n") == {"a": 1, "b": 2}


def test_parse_flat_keyed_gives_only_the_keys_asked_for():
    assert parse_flat_keyed("a 1\nb 2\nc 3\n", {"a", "c", "z"}) == {"a": 1, "c": 3}
    assert parse_flat_keyed("a 1\nlonely\nc 3\n", {"c", "lonely"}) == {"c": 3}  # the line-wise path
    assert parse_flat_keyed(None, {"a"}) == {}
    assert parse_flat_keyed(None) == {}


@pytest.mark.parametrize(
    "service_bytes, serviced, expected",
    [
        (None, None, None),
        ("Total 0\n", "Total 0\n", ()),
        (
            "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 30\n"
            "7:1 Read 5\n7:1 Write 0\nTotal 35\n",
            "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
            (DeviceIO(7, 1, read_bytes=5), DeviceIO(8, 0, 10, 20, 1, 2)),
        ),
        (None, "253:2 Read 4\n253:2 Write 9\n", (DeviceIO(253, 2, read_ops=4, write_ops=9),)),
    ],
)
def test_parse_blkio(service_bytes, serviced, expected):
    assert parse_blkio(service_bytes, serviced) == expected


def test_parse_io_stat():
    assert parse_io_stat(None) is None
    assert parse_io_stat("") == ()
    # Devices with only some keys (e.g. no discard support) still parse.
    assert parse_io_stat("259:0 rbytes=7 wbytes=8 rios=1 wios=2\n8:0 rbytes=1\n") == (
        DeviceIO(8, 0, read_bytes=1),
        DeviceIO(259, 0, 7, 8, 1, 2),
    )


def test_parse_pressure():
    assert parse_pressure(None) is None
    assert parse_pressure("") is None
    # The system-wide cpu.pressure of older kernels has no "full" line.
    assert parse_pressure("some avg10=1.50 avg60=0.25 avg300=0.00 total=123\n") == Pressure(
        some=PressureLine(1.5, 0.25, 0.0, 123)
    )


@pytest.mark.parametrize(
    "usage, inactive, expected", [(None, 5, None), (100, None, 100), (100, 30, 70), (10, 30, 0)]
)
def test_working_set(usage, inactive, expected):
    assert working_set(usage, inactive) == expected


def test_fixture_trees_exist():
    # Golden tests above silently compare against None if a fixture path is wrong.
    assert os.path.isdir(FIXTURES / "v1" / "memory" / V1_CONTAINER.lstrip("/"))
    assert os.path.isdir(FIXTURES / "v2" / V2_CONTAINER.lstrip("/"))
