"""Run a function inside a pod's network namespace without forking the agent.

A network namespace belongs to a thread, not to the process: `setns(CLONE_NEWNET)` moves only the
calling thread. So the work runs on a fresh, short-lived thread that enters the namespace, runs,
and goes back to the namespace it started in before it ends. The caller's thread and every other
thread of the gRPC server never leave the host namespace. (Forking a child to open a socket there
is what a multi-threaded server must not do.)

Sockets are bound to the namespace they were created in, so `fn` must open its own netlink socket
(rtnetlink.Netlink()) on that thread and close it there.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from runtime.errors import Internal, NotFound
from runtime.linux.constants import CLONE_NEWNET
from runtime.linux.syscalls import LinuxSyscalls, Syscalls

T = TypeVar("T")
log = logging.getLogger(__name__)

_THREAD_NETNS = "/proc/thread-self/ns/net"


def run_in_netns(netns_path: str, fn: Callable[[], T], syscalls: Syscalls | None = None) -> T:
    """Returns fn()'s result, or raises what it raised, having run it inside netns_path."""
    kernel = syscalls or LinuxSyscalls()
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"network namespace {netns_path} does not exist") from e
    except OSError as e:
        raise Internal(f"opening network namespace {netns_path}: {e}") from e
    outcome: list[tuple[bool, object]] = []

    def enter_run_return() -> None:
        try:
            home = os.open(_THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            outcome.append((False, Internal(f"opening this thread's network namespace: {e}")))
            return
        try:
            try:
                kernel.setns(target, CLONE_NEWNET)
            except OSError as e:
                outcome.append((False, Internal(f"entering network namespace {netns_path}: {e}")))
                return
            try:
                outcome.append((True, fn()))
            except BaseException as e:  # handed to the caller's thread, which re-raises it
                outcome.append((False, e))
            finally:
                _return_home(kernel, home, netns_path)
        finally:
            os.close(home)

    worker = threading.Thread(target=enter_run_return, name=f"netns {os.path.basename(netns_path)}")
    try:
        worker.start()
        worker.join()
    finally:
        os.close(target)
    ok, value = outcome[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def _return_home(kernel: Syscalls, home: int, netns_path: str) -> None:
    try:
        kernel.setns(home, CLONE_NEWNET)
    except OSError as e:
        # The thread ends right after this, taking the foreign namespace with it; nothing else ran in it.
        log.warning("leaving network namespace %s: %s (the thread ends in it)", netns_path, e)
