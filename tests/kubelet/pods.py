"""Waiting on the pods a standalone kubelet reports (its /pods)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.timescale import TIMEOUT_SCALE

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Callable[[], str]) -> T:
    """Polls ``probe`` until it returns something; fails with the kubelet's log tail after ``timeout``
    (scaled in an emulated guest: tests/timescale.py)."""
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"timed out waiting for {what}; kubelet log:\n{log()}"
        time.sleep(0.3)
    return found


def pod_in(pods: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in pods["items"] or () if p["metadata"]["name"] == name), None)


def container_statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["status"].get("containerStatuses", ())}


def running(pod: dict[str, Any] | None, containers: tuple[str, ...]) -> dict[str, Any] | None:
    """The pod once it is Running with all of ``containers`` running."""
    if pod is None or pod.get("status", {}).get("phase") != "Running":
        return None
    statuses = container_statuses(pod)
    return pod if all("running" in statuses.get(n, {}).get("state", {}) for n in containers) else None
