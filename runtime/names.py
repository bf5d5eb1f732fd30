"""Reserved object names: a second pod or container with the same metadata is refused until the
first is removed (the kubelet relies on this to detect duplicates after restarts)."""
from __future__ import annotations

import threading

from runtime.errors import AlreadyExists


class NameRegistry:
    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._lock = threading.Lock()
        self._owner: dict[str, str] = {}

    def reserve(self, name: str, owner: str) -> None:
        with self._lock:
            holder = self._owner.setdefault(name, owner)
        if holder != owner:
            raise AlreadyExists(f"{self._kind} name {name!r} is reserved for {holder}")

    def release(self, name: str, owner: str | None = None) -> None:
        """Frees ``name``; with ``owner``, only if that object still holds it (a racing remove
        must not free the name of the object that took it since)."""
        with self._lock:
            if owner is None or self._owner.get(name) == owner:
                self._owner.pop(name, None)


def sandbox_name(name: str, namespace: str, uid: str, attempt: int) -> str:
    return f"{name}_{namespace}_{uid}_{attempt}"


def container_name(name: str, pod_name: str, pod_namespace: str, pod_uid: str, attempt: int) -> str:
    return f"{name}_{pod_name}_{pod_namespace}_{pod_uid}_{attempt}"
