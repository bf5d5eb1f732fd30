"""Facts about processes from procfs: pure parsers, and thin readers over an injectable /proc root.

Liveness is PID + start time (DESIGN §4): a PID alone can be reused by an unrelated process after
ours exited, but (pid, start time) cannot. A process that vanishes while we read it is reported as
gone, never as an error: that race is normal.
"""

import os
import re
from dataclasses import dataclass

PROC = "/proc"
_GONE = (FileNotFoundError, ProcessLookupError)
_STAT_READ = 4096  # /proc/<pid>/stat: 52 numbers and a short comm


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str  # R, S, D, Z (zombie), X (dead), T, t, I ...
    ppid: int
    start_time: int  # clock ticks after boot (field 22)


def parse_stat(text: str) -> ProcStat:
    """Parse /proc/<pid>/stat. comm may hold spaces and parentheses, so it ends at the last ')'."""
    try:
        head, _, tail = text.rpartition(")")
        pid_part, _, comm = head.partition(" (")
        fields = tail.split()
        # fields[0] is field 3 (state), so field N is fields[N - 3].
        return ProcStat(
            pid=int(pid_part), comm=comm, state=fields[0], ppid=int(fields[1]), start_time=int(fields[19])
        )
    except (ValueError, IndexError) as e:
        raise ValueError(f"malformed /proc/<pid>/stat: {text[:80]!r}") from e


def parse_status(text: str) -> dict[str, str]:
    """/proc/<pid>/status as {key: value}, values stripped ("CapBnd" -> "000001fffeffffff")."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def read_stat(pid: int, proc_root: str = PROC) -> ProcStat | None:
    data = _stat_line(pid, proc_root)
    return None if data is None else parse_stat(data.decode(errors="replace"))


def _stat_line(pid: int | str, proc_root: str) -> bytes | None:
    # os.read, not open(): no io objects in a forked child (start_time).
    try:
        fd = os.open(os.path.join(proc_root, str(pid), "stat"), os.O_RDONLY | os.O_CLOEXEC)
    except _GONE:
        return None
    try:
        return os.read(fd, _STAT_READ)
    except _GONE:  # ESRCH: reaped between the open and the read
        return None
    finally:
        os.close(fd)


def read_status(pid: int | str, proc_root: str = PROC) -> dict[str, str] | None:
    """Status of ``pid`` ("self" for this process), None when it is gone."""
    try:
        with open(os.path.join(proc_root, str(pid), "status")) as f:
            return parse_status(f.read())
    except _GONE:
        return None


def start_time(pid: int | str, proc_root: str = PROC) -> int | None:
    """Field 22 of its stat (``pid`` may be "self"), parsed apart from parse_stat: the pause reads
    its own (runtime/process/pausestart.py) in a process forked from the fork server, whose
    pages building a ProcStat from the decoded line would copy (~0.2 MiB)."""
    data = _stat_line(pid, proc_root)
    if data is None:
        return None
    try:
        # After comm's last ')': field 3 (state) on, so field 22 is the 20th.
        return int(data.rpartition(b")")[2].split(maxsplit=20)[19])
    except (ValueError, IndexError) as e:
        raise ValueError(f"malformed /proc/<pid>/stat: {data[:80]!r}") from e


def is_alive(pid: int, expected_start_time: int, proc_root: str = PROC) -> bool:
    """True if ``pid`` is still the process that started at ``expected_start_time`` and has not
    exited. A zombie has exited (only its exit status remains), so it is not alive."""
    stat = read_stat(pid, proc_root)
    return stat is not None and stat.start_time == expected_start_time and stat.state not in ("Z", "X")


def pids(proc_root: str = PROC) -> tuple[int, ...]:
    return tuple(sorted(int(name) for name in os.listdir(proc_root) if name.isdigit()))


def _all_stats(proc_root: str) -> list[ProcStat]:
    stats = (read_stat(pid, proc_root) for pid in pids(proc_root))
    return [stat for stat in stats if stat is not None]


def children(pid: int, proc_root: str = PROC) -> tuple[int, ...]:
    return tuple(stat.pid for stat in _all_stats(proc_root) if stat.ppid == pid)


def descendants(ancestor: int, proc_root: str = PROC) -> tuple[ProcStat, ...]:
    """Every process below ``ancestor`` (children, grandchildren, ...), from one snapshot."""
    by_parent: dict[int, list[ProcStat]] = {}
    for stat in _all_stats(proc_root):
        by_parent.setdefault(stat.ppid, []).append(stat)
    found: list[ProcStat] = []
    pending = [ancestor]
    while pending:
        for child in by_parent.get(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return tuple(found)


def zombies_under(ancestor: int, proc_root: str = PROC) -> tuple[int, ...]:
    """PIDs of exited-but-unreaped processes below ``ancestor``; tests assert this is empty."""
    return tuple(stat.pid for stat in descendants(ancestor, proc_root) if stat.state == "Z")


def open_fds(pid: int | str, proc_root: str = PROC) -> dict[int, str]:
    """{fd: what it points to} for ``pid`` ("self" for this process); {} when it is gone.

    A target that cannot be read (closed meanwhile) is "". Listing "self" shows the listing's own
    directory fd too, which is closed again by the time this returns."""
    fd_dir = os.path.join(proc_root, str(pid), "fd")
    try:
        names = os.listdir(fd_dir)
    except _GONE:
        return {}
    fds: dict[int, str] = {}
    for name in names:
        try:
            fds[int(name)] = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            fds[int(name)] = ""
    return fds


def unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mount_points(mountinfo: str) -> tuple[str, ...]:
    """Mount points (field 5) of /proc/<pid>/mountinfo, in mount order."""
    return tuple(unescape_mountinfo(line.split()[4]) for line in mountinfo.splitlines() if line.strip())


def mount_points(pid: int | str = "self", proc_root: str = PROC) -> tuple[str, ...]:
    with open(os.path.join(proc_root, str(pid), "mountinfo")) as f:
        return parse_mount_points(f.read())


def containing_mount(path: str, points: tuple[str, ...]) -> str:
    """The mount point, of ``points``, that ``path`` (absolute, normalised) lies on: the deepest one
    that is the path or a whole-component prefix of it."""
    best = "/"
    for point in points:
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best = point
    return best
