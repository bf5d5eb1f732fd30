"""hack/bench/cpusplit.py: perf samples split by process and by kernel category, in a window."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "hack" / "bench" / "cpusplit.py"
    spec = importlib.util.spec_from_file_location("cpusplit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PERF_SCRIPT = """\
pycrid-monitor   100.100:
\tffffffff81000001 clear_page_erms+0x5
\tffffffff81000002 exc_page_fault+0x10
\t    7f0000000001 _PyEval_EvalFrameDefault+0x20

python   100.200:
\t    7f0000000002 _PyEval_EvalFrameDefault+0x20

swapper   100.300:
\tffffffff81000003 pv_native_safe_halt+0x1

kworker/u8:2-ev   100.400:
\tffffffff81000004 find_inode_bit+0x1
\tffffffff81000005 __ext4_new_inode+0x9
\tffffffff81000006 do_syscall_64+0x3

python   105.000:
\t    7f0000000002 _PyEval_EvalFrameDefault+0x20
"""


def test_samples_in_the_window_split_by_process_and_first_matching_category() -> None:
    cpusplit = load()
    busy, idle, table = cpusplit.split(PERF_SCRIPT.splitlines(), 100.0, 101.0)
    assert (busy, idle) == (3, 1)  # the sample at 105 s is outside
    assert table["pycrid-monitor"] == {"page faults": 1}
    assert table["python"] == {"user": 1}
    # a comm with a space-free dash and the ext4 frame above the syscall entry: ext4 wins
    assert table["kworker/u8:2-ev"] == {"ext4 inode allocation": 1}
    text = cpusplit.report(busy, idle, table)
    assert "busy 75% of the samples" in text
    assert "| pycrid-monitor | 33.3 | 0.0 | 33.3 |" in text
