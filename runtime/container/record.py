"""The record pycrid keeps of a container. State is derived from timestamps, never stored twice."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from runtime.container.model import ContainerConfig
from runtime.container.users import InitialUser
from runtime.process.initspec import InitSpec


class State(Enum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class MountedImage:
    """The image behind one of the container's image volumes, as resolved at create."""

    container_path: str  # the CRI mount's, as given
    image_id: str  # its config digest: RemoveImage of it is refused while the container exists
    image_ref: str  # a repo digest, else the id: what ContainerStatus reports as the mount's image_ref


@dataclass(frozen=True)
class Container:
    id: str
    sandbox_id: str
    config: ContainerConfig
    image_id: str  # the image's config digest
    image_ref: str  # what the container was created from, resolved (a repo digest or the id)
    spec: InitSpec
    cgroup: str
    created_at: int  # ns since the epoch
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    pid: int = 0
    pid_start: int = 0  # the init's start time, so a reused pid is never mistaken for it
    oom_kills_before: int = 0  # the cgroup's OOM count when it started
    reason: str = ""
    message: str = ""
    unknown: bool = False
    image_name: str = ""  # how statuses name its image: as the pod spec does, else a tag of it
    user: InitialUser | None = None  # as its init reported it once started
    stop_signal: str = ""  # what StopContainer sends (runtime/container/stopsignal.py); "" in older records
    mounted_images: tuple[MountedImage, ...] = ()  # its image volumes' images

    def uses_image(self, image_id: str) -> bool:
        """As its rootfs or in an image volume."""
        return self.image_id == image_id or any(m.image_id == image_id for m in self.mounted_images)

    @property
    def shown_image(self) -> str:
        return self.image_name or self.config.user_image or self.config.image

    @property
    def state(self) -> State:
        if self.unknown:
            return State.UNKNOWN
        if self.finished_at:
            return State.EXITED
        if self.started_at:
            return State.RUNNING
        return State.CREATED


def exit_reason(exit_code: int, signal: int, oom_killed: bool) -> str:
    """The kubelet's vocabulary for why a container ended."""
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 and signal == 0 else "Error"
