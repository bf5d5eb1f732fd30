"""A container's stdio as its pod monitor sets it up: pipes for its stdout and stderr, a pipe for
its stdin when it was created with one (attach clients write to it), and nothing of the kind for
a TTY container, whose init makes a terminal in the container and hands its master over."""
from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.process.attach import Stdin


@dataclass
class OurEnds:
    outputs: dict[int, bytes]  # read ends of the container's stdout and stderr pipes
    stdin: Stdin  # the write end of its stdin pipe (none for a TTY: the terminal comes from init)


def container_stdio(tty: bool, stdin: bool, stdin_once: bool) -> tuple[tuple[int, int, int], OurEnds]:
    """init's stdin, stdout and stderr (a TTY container replaces them by its terminal), and the
    ends the monitor keeps."""
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    if tty:
        return (null, null, null), OurEnds({}, Stdin())
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ends = OurEnds({out_r: b"stdout", err_r: b"stderr"}, Stdin())
    if not stdin:
        return (null, out_w, err_w), ends
    os.close(null)
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(in_w, False)
    ends.stdin = Stdin(in_w, once=stdin_once)
    return (in_r, out_w, err_w), ends
