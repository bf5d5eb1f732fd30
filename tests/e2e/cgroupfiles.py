"""A cgroup's CPU and memory limits read from the kernel's files, on the hierarchy this node runs:
v1 (a directory per controller) or the unified v2 one (hack/vm's guest). Expectations are written
as the CRI values and turned into the files each version has, so one test checks both."""
from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V2 = (ROOT / "cgroup.controllers").exists()
# cpu.weight from CRI shares by the kubelet's conversion (libcontainer's, runc >= 1.3.2's).
WEIGHTS = {256: "35", 512: "59", 1024: "100"}
UNLIMITED_MEMORY = "max" if V2 else "9223372036854771712"


def hierarchies() -> list[Path]:
    """Each mounted hierarchy's root: one per v1 controller directory, or the v2 root."""
    return [ROOT] if V2 else [p for p in ROOT.iterdir() if p.is_dir() and not p.is_symlink()]


def in_every_hierarchy(path: str) -> list[Path]:
    return [h / path.lstrip("/") for h in hierarchies()]


def process_cgroup(pid: int, controller: str) -> Path:
    """The directory of a host process's cgroup for ``controller`` (on v2, its one cgroup)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if V2 and hierarchy == "0":
            return ROOT / path.lstrip("/")
        if controller in controllers.split(","):
            return ROOT / controller / path.lstrip("/")
    raise AssertionError(f"process {pid} has no {controller} cgroup")


def cgroup_dir(path: str, controller: str) -> Path:
    """The directory of cgroup ``path`` (as the CRI and /proc name it) for ``controller``."""
    return ROOT / path.lstrip("/") if V2 else ROOT / controller / path.lstrip("/")


def memory_file() -> str:
    return "memory.max" if V2 else "memory.limit_in_bytes"


def limits(memory_dir: Path, cpu_dir: Path) -> dict[str, str]:
    """The memory limit, CPU weight or shares, CFS quota and period, by file name."""
    files = {memory_file(): (memory_dir / memory_file()).read_text().strip()}
    cpu = ("cpu.weight", "cpu.max") if V2 else ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us")
    files.update({name: (cpu_dir / name).read_text().strip() for name in cpu})
    return files


def expected(memory: int | str, shares: int | None, quota: int, period: int) -> dict[str, str]:
    """What limits() reads for these CRI values (without the CPU weight or shares when None)."""
    if V2:
        files = {"memory.max": str(memory), "cpu.max": f"{quota} {period}"}
        return files if shares is None else {**files, "cpu.weight": WEIGHTS[shares]}
    files = {"memory.limit_in_bytes": str(memory), "cpu.cfs_quota_us": str(quota), "cpu.cfs_period_us": str(period)}
    return files if shares is None else {**files, "cpu.shares": str(shares)}


def process_limits(pid: int) -> dict[str, str]:
    return limits(process_cgroup(pid, "memory"), process_cgroup(pid, "cpu"))


def cgroup_limits(path: str) -> dict[str, str]:
    return limits(cgroup_dir(path, "memory"), cgroup_dir(path, "cpu"))
