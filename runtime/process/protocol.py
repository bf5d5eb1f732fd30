"""The wires between the agent, the fork server, the pod monitors and what they fork.

Process tree (DESIGN §3; the fault domains of issue 11):

  pycrid serve (agent, multi-threaded)       may die or restart at any time: nothing below depends on it
    └ fork server (own session, subreaper)   forks pod monitors and layer unpackers; holds no state
        ├ pod monitor <sandbox> (own session, subreaper)   one per pod; pins its namespaces, starts
        │   ├ pause (PID 1 of the pod's PID namespace)      its pause, containers and execs, copies
        │   ├ container inits (a restore: via a starter)    their output to the CRI logs and records
        │   └ exec children                                 their exits; the death of one costs its pod
        └ unpack_layer children (one per layer of a pull)

Every request is one SOCK_SEQPACKET message on a fresh connection to a socket file (0600, in the
0700 state dir: never an abstract name, CVE-2020-15257): a JSON object with file descriptors
attached (SCM_RIGHTS). The server answers with one JSON message: the answer, or
{"error": message, "error_class": a runtime.errors class name}.

Fork server (``<state>/forkserver.sock``):

  request                                      fds          answer
  {"op": "ping"}                               []           {"pid", "build", "protocol"}
  {"op": "attach"}                             []           as ping; an agent is back: cancels "linger"
  {"op": "spawn", "kind": K, "spec": {...}}    [report,…]   {"pid": P}
  {"op": "linger"}                             []           {"pid"}; exits once it has no children left
  {"op": "shutdown"}                           []           {"pid"}, then it exits
  {"op": "upgrade", "argv": [...], "env": {}}  []           {"pid"}, then it execs argv in place

A spawned child of kind K runs TARGETS[K](spec, fds) in its own session and writes one message to
`report` when it has done its job or failed: {"ok": {...}} or {"error": ..., "error_class": ...}.
The agent waits for that message, not for the fork server, so a slow child never blocks others,
and the death of the fork server loses no child that is already running.

Pod monitor (``<state>/sandboxes/<id>/monitor.sock``):

  request                                      fds                    answer
  {"op": "ping"}                               []                     {"pid", "build", "protocol",
                                                                       "pause": pid|0, "pause_alive",
                                                                       "containers": {id: pid}}
  {"op": "pause", "spec": {...}}               []                     {"pid", "start_time"}
  {"op": "prepare", "spec": InitSpec,          []                     {"pid"}: the container's init is set up
   "timeout": seconds}                                                 and held before its privileges drop
  {"op": "start", "spec": InitSpec,            []                     {"pid", "started_at", "user"}; a held
   "timeout": seconds}                                                 init goes on, else one is started
  {"op": "discard", "id": container}           []                     {}; a held init is killed
  {"op": "exec", "spec": ExecSpec}             [report, in, out, err] {"pid"}; the exec child reports
                                                                       on `report` when it ends
  {"op": "reopen", "id": container}            []                     {}
  {"op": "shutdown"}                           []                     {}; kills what is left, exits
  {"op": "upgrade", "argv": [...], "env": {}}  []                     {}; then it execs argv in place,
                                                                       handing its state over

"upgrade" keeps its form in every future protocol version: it is how a newer agent replaces the
code of a helper it cannot otherwise talk to. A re-exec keeps the pid, so the helper stays the
parent (and subreaper) of everything it started; a monitor hands its pipes, log files and exits
over through an inherited memfd (runtime/process/handover.py).

Pod monitor ↔ container init, over a socketpair (init's end is close-on-exec; the monitor reads
its end as messages come, runtime/process/initwatch.py):

  phase      direction         meaning
  terminal   init → monitor    (TTY containers) the master of the terminal init made in the container's
                               /dev/pts, attached; its slave is init's stdio
  joined     monitor → init    init's pid is in the container's cgroups (init set up its namespaces,
                               rootfs and mounts meanwhile); go on with privileges and exec
  created    init → monitor    (a prepared start) {"created": {}, "marks": [...]}: set up, user resolved;
                               init waits for "go" before it drops privileges (CRI-O's create/start split)
  go         monitor → init    the agent's StartContainer came: go on
  ready      init → monitor    {"ready": {"uid", "gid", "groups"}, "marks": [[step, t], ...]}: user (as it
                               became: ContainerStatus.user), capabilities, seccomp done; exec next; when
                               each set-up step ended (CLOCK_MONOTONIC, seconds), for the agent's spans
  (EOF)      init → monitor    execve succeeded: the close-on-exec end closed
  error      init → monitor    {"error": message, "phase": step, "error_class"?}; init exits 1. Without
                               a phase: init could not begin (its spec, its cgroup's files), told as
                               the monitor's own failure would be (error_message)
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from runtime import errors

PROTOCOL = 2  # 1 was the fork server that also watched every container (before pod monitors)
# A spec carries a container's command and environment, which may take 1 MiB
# (runtime/container/command.py); anything bigger is a bug or an attack.
MAX_MESSAGE = 4 << 20
MAX_FDS = 8

SO_SNDBUFFORCE = 32  # not in Python's socket module
JOINED = b"joined"
GO = b"go"
READY = b"ready"  # the pause's, with its start time (pause_ready); a container init's carries its user (ready())
TERMINAL = b"terminal"  # with a terminal's master attached

# Error classes a child may name in its report; anything else arrives as Internal.
_REPORTED = {cls.__name__: cls for cls in (
    errors.NotFound, errors.AlreadyExists, errors.InvalidArgument, errors.FailedPrecondition,
    errors.ResourceExhausted, errors.Unavailable, errors.DeadlineExceeded, errors.Internal)}


# One encoder for every message, where json.dumps(..., ensure_ascii=False) builds one per call: a
# pod monitor (a fork of the fork server) then writes fewer of the pages it shares with it.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = _ENCODE(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data) if sock.type == socket.SOCK_STREAM else sock.send(data)


def pause_ready(start_time: int) -> bytes:
    """The pause's READY: its start time (field 22 of its /proc stat) is read by the pause itself,
    so its monitor, which keeps each page it writes, never parses a stat line."""
    return READY + b" %d" % start_time


def ready(uid: int, gid: int, groups: Sequence[int], marks: Sequence[tuple[str, float]] = ()) -> bytes:
    """Container init's "ready": the user, group and supplementary groups it set before exec, and
    when each of its steps ended (runtime/spans.py turns these into the start's phases)."""
    return _ENCODE({"ready": {"uid": uid, "gid": gid, "groups": list(groups)},
                    "marks": [list(m) for m in marks]}).encode()


def created(marks: Sequence[tuple[str, float]]) -> bytes:
    """A prepared init's "created": set up and waiting for "go" (its marks so far)."""
    return _ENCODE({"created": {}, "marks": [list(m) for m in marks]}).encode()


def allow_large(sock: socket.socket) -> None:
    """A datagram is refused (EMSGSIZE) when larger than the sender's buffer (~208 KiB by default):
    room for the largest message. Root may go past net.core.wmem_max."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, MAX_MESSAGE + 65536)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE + 65536)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and its fds; (None, []) when the peer closed."""
    try:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    except ConnectionResetError:
        # The peer closed with a message of ours unread (a child that failed and reported while
        # we told it something). The kernel says so once, ahead of what the peer sent before
        # closing, which is still queued: read on.
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    message = json.loads(data)
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message, fds


def error_message(e: BaseException, prefix: str = "") -> dict[str, Any]:
    """The report or answer for a failure: its text and, for a domain error, its class."""
    text = str(e) if isinstance(e, errors.PycridError) else f"{type(e).__name__}: {e}"
    message: dict[str, Any] = {"error": f"{prefix}{text}"}
    if type(e).__name__ in _REPORTED:
        message["error_class"] = type(e).__name__
    return message


def raise_error(message: dict[str, Any], what: str) -> None:
    """Raises the domain error an error message names (Internal when it names none)."""
    if "error" in message:
        raise reported_error(message, f"{what}: ")


def reported_error(message: dict[str, Any], prefix: str = "") -> errors.PycridError:
    """The domain error an error message (error_message's) names, Internal when it names none."""
    cls = _REPORTED.get(str(message.get("error_class", "")), errors.Internal)
    return cls(f"{prefix}{message['error']}")
