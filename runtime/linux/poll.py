"""select()-style waiting for readability, on poll(2): select() refuses descriptors above 1023,
and the agent holds thousands (runtime/cgroups/heldfiles.py), the fork server one pipe or more
per running container."""
from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Protocol, TypeVar


class HasFileno(Protocol):
    def fileno(self) -> int: ...


T = TypeVar("T", bound=int | HasFileno)
# What select() counts as readable: data, end of file (a closed writer is POLLHUP) and errors,
# so the read that follows sees them.
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLNVAL


def wait_readable(objects: Sequence[T], timeout: float | None) -> list[T]:
    """The objects (fds or things with fileno()) readable within ``timeout`` seconds (None:
    wait forever), in the order given; [] on timeout."""
    poller = select.poll()
    by_fd: dict[int, T] = {}
    for o in objects:
        fd = o if isinstance(o, int) else o.fileno()
        by_fd[fd] = o
        poller.register(fd, select.POLLIN | select.POLLPRI)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    ready = {fd for fd, events in poller.poll(ms) if events & _READABLE}
    return [o for fd, o in by_fd.items() if fd in ready]
