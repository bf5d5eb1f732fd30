"""What the CRI services call on the runtime's container and image managers.

Protocols rather than the manager classes: the composition root (cri/app.py) hands the services
metrics/observe.py's wrappers, which intercept a few calls and pass the rest through.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from runtime.cgroups.resources import Resources
from runtime.container.execsync import ExecResult
from runtime.container.model import ContainerConfig
from runtime.container.record import Container
from runtime.image import Credentials, FsUsage, Image
from runtime.sandbox.record import Sandbox


class Containers(Protocol):
    def get(self, container_id: str) -> Container: ...

    def list(self) -> list[Container]: ...

    def create(self, sandbox: Sandbox, config: ContainerConfig) -> str: ...

    def start(self, container_id: str, timeout: float | None = None) -> None: ...

    def stop(self, container_id: str, timeout: int) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def update_resources(self, container_id: str, resources: Resources) -> None: ...

    def reopen_log(self, container_id: str) -> None: ...

    def exec_sync(self, container_id: str, args: tuple[str, ...], timeout: float | None) -> ExecResult: ...


class Images(Protocol):
    def pull(self, ref: str, auth: Credentials | None = None, pinned: bool = False) -> Image: ...

    def status(self, ref: str) -> Image | None: ...

    def list(self, filter_ref: str | None = None) -> list[Image]: ...

    def remove(self, ref: str, in_use: Callable[[str], str | None]) -> None: ...

    def config_document(self, image_id: str) -> dict[str, Any]: ...

    def fs_info(self) -> FsUsage: ...
