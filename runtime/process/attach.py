"""Attach sessions in the pod monitor: copies of a container's output for each attached client, and
what clients type written to the container's stdin (its stdin pipe, or its terminal's master).

The monitor never blocks on a client: output for a client whose pipe is full is dropped for that
client and counted (the CRI log still gets every byte; a client that stops reading costs neither
memory nor the container's progress). Input goes to the container as fast as it reads: while the
container's stdin is full, the client's input is not read (back-pressure to the client), at most
one chunk waiting in memory.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class Attacher:
    outputs: dict[bytes, int]  # b"stdout" | b"stderr" → the write end of the agent's pipe
    input: int = -1  # the read end of what the client types, or -1
    pending: bytes = b""  # typed, not yet taken by the container
    dropped: int = 0  # output bytes this client was too slow for

    def close(self) -> None:
        for fd in self.outputs.values():
            os.close(fd)
        self.outputs.clear()
        if self.input >= 0:
            os.close(self.input)
            self.input = -1

    @property
    def done(self) -> bool:
        return not self.outputs and self.input < 0


@dataclass
class Stdin:
    """A container's stdin as the monitor holds it."""

    fd: int = -1  # the stdin pipe's write end or the terminal's master; -1: none (or closed)
    terminal: bool = False
    once: bool = False  # close it when the first attach that wrote to it ends (CRI stdin_once)
    attachers: list[Attacher] = field(default_factory=list)

    def attach(self, attacher: Attacher) -> None:
        for fd in (*attacher.outputs.values(), attacher.input):
            if fd >= 0:
                os.set_blocking(fd, False)
        self.attachers.append(attacher)

    def copy_out(self, stream: bytes, data: bytes) -> None:
        """Container output, to every client that asked for ``stream`` (a terminal has one)."""
        for a in self.attachers:
            fd = a.outputs.get(b"stdout" if self.terminal else stream)
            if fd is None:
                continue
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                written = 0
            except OSError:  # the client went away
                os.close(a.outputs.pop(b"stdout" if self.terminal else stream))
                continue
            a.dropped += len(data) - written
        self._forget_done()

    def inputs(self) -> list[int]:
        """Clients' input fds to read now (not those whose last chunk the container has not taken)."""
        return [a.input for a in self.attachers if a.input >= 0 and not a.pending]

    def owner(self, fd: int) -> Attacher | None:
        return next((a for a in self.attachers if a.input == fd), None)

    def typed(self, attacher: Attacher) -> None:
        """``attacher``'s input is readable: pass it on, or end it at EOF."""
        try:
            data = os.read(attacher.input, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            os.close(attacher.input)
            attacher.input = -1
            if self.once:
                self.close()
        else:
            attacher.pending = data
            self.flush()
        self._forget_done()

    def flush(self) -> bool:
        """Writes what clients typed; True if some of it still waits for the container."""
        for a in self.attachers:
            if not a.pending:
                continue
            if self.fd < 0:
                a.pending = b""
                continue
            try:
                a.pending = a.pending[os.write(self.fd, a.pending):]
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.EIO):
                    raise
                a.pending = b""  # the container closed its stdin
        return any(a.pending for a in self.attachers)

    def drop_clients(self) -> None:
        """Every client detached (its side sees EOF); the container's stdin stays."""
        for a in self.attachers:
            a.close()
        self.attachers.clear()

    def close(self) -> None:
        """No more input: the container reads EOF (a terminal stays, it is also the output)."""
        if self.fd >= 0 and not self.terminal:
            os.close(self.fd)
            self.fd = -1

    def end(self) -> None:
        """The container is gone: every client sees EOF. (A terminal's master is the container's
        output too: the watcher that reads it closes it.)"""
        self.drop_clients()
        self.close()
        self.fd = -1

    def _forget_done(self) -> None:
        for a in [a for a in self.attachers if a.done]:
            self.attachers.remove(a)
