"""What the workers believe exists: pods and containers they made and saw succeed, shared by
every worker thread, plus IDs that were removed (to call on again: Stop/Remove are idempotent).

It is a belief, not the truth: another worker may have removed a pod a moment ago, and an agent
kill may lose a creation that was answered. Calls on stale objects get NOT_FOUND, a documented
answer; the final invariants ask pycrid itself."""
from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from cri.api.v1 import api_pb2 as pb


@dataclass(frozen=True)
class Pod:
    id: str
    name: str
    shared_pid: bool
    config: pb.PodSandboxConfig  # what it was made with (CreateContainer needs it again)


@dataclass(frozen=True)
class Container:
    id: str
    pod_id: str
    name: str
    lasting: bool  # runs until stopped (else it exits on its own)


class World:
    def __init__(self, max_pods: int, max_containers_per_pod: int) -> None:
        self.max_pods = max_pods
        self.max_containers_per_pod = max_containers_per_pod
        self._lock = threading.Lock()
        self._pods: dict[str, Pod] = {}
        self._containers: dict[str, Container] = {}
        self._removed: deque[str] = deque(maxlen=64)

    def add_pod(self, pod: Pod) -> None:
        with self._lock:
            self._pods[pod.id] = pod

    def add_container(self, container: Container) -> None:
        with self._lock:
            if container.pod_id in self._pods:
                self._containers[container.id] = container

    def drop_pod(self, pod_id: str) -> None:
        with self._lock:
            if self._pods.pop(pod_id, None) is not None:
                self._removed.append(pod_id)
            for c in [c for c in self._containers.values() if c.pod_id == pod_id]:
                del self._containers[c.id]
                self._removed.append(c.id)

    def drop_container(self, container_id: str) -> None:
        with self._lock:
            if self._containers.pop(container_id, None) is not None:
                self._removed.append(container_id)

    def full(self) -> bool:
        with self._lock:
            return len(self._pods) >= self.max_pods

    def pod(self, rng: random.Random) -> Pod | None:
        with self._lock:
            return rng.choice(list(self._pods.values())) if self._pods else None

    def pod_with_room(self, rng: random.Random) -> Pod | None:
        with self._lock:
            counts = {p: 0 for p in self._pods}
            for c in self._containers.values():
                counts[c.pod_id] = counts.get(c.pod_id, 0) + 1
            roomy = [self._pods[p] for p, n in counts.items() if n < self.max_containers_per_pod]
            return rng.choice(roomy) if roomy else None

    def container(self, rng: random.Random, lasting: bool | None = None) -> Container | None:
        with self._lock:
            found = [c for c in self._containers.values() if lasting is None or c.lasting == lasting]
            return rng.choice(found) if found else None

    def removed_id(self, rng: random.Random) -> str | None:
        with self._lock:
            return rng.choice(list(self._removed)) if self._removed else None

    def pod_of(self, container_id: str) -> str:
        with self._lock:
            c = self._containers.get(container_id)
            return c.pod_id if c else ""
