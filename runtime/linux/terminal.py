"""Terminals for containers and execs with a TTY: a pseudo-terminal pair made inside the container
(its own devpts instance, mounted with newinstance: the pair never appears in the host's /dev/pts),
the slave made the controlling terminal of a new session, and window sizes set on the master."""
from __future__ import annotations

import fcntl
import os
import struct
import termios


def open_terminal() -> tuple[int, int]:
    """A (master, slave) pair from /dev/ptmx as this mount namespace sees it; both close-on-exec."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    return master, slave


def take_terminal(slave: int) -> None:
    """Makes ``slave`` this process's stdin, stdout, stderr and controlling terminal, in a new
    session (so that ^C reaches the foreground job, as in a login): its own, if it leads one already."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def set_window(master: int, rows: int, columns: int) -> None:
    """The terminal's size, as the client's terminal is (the program gets SIGWINCH)."""
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", max(0, rows), max(0, columns), 0, 0))


def window(fd: int) -> tuple[int, int]:
    """(rows, columns) of a terminal."""
    rows, columns, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, columns
