"""The image config blob: what containers inherit (Env, Cmd, User, …) and the layers' diff IDs. Pure."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypedDict

from runtime.errors import InvalidArgument
from runtime.image.digest import validate_digest


class ImageConfigRecord(TypedDict):
    """An ImageConfig as the image store keeps it (store.py)."""

    user: str
    env: list[str]
    entrypoint: list[str]
    cmd: list[str]
    working_dir: str
    volumes: list[str]
    exposed_ports: list[str]
    stop_signal: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ImageConfig:
    """The runtime-relevant part of an OCI image config (``config`` object of the blob)."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    volumes: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> ImageConfigRecord:
        return {"user": self.user, "env": list(self.env), "entrypoint": list(self.entrypoint),
                "cmd": list(self.cmd), "working_dir": self.working_dir, "volumes": list(self.volumes),
                "exposed_ports": list(self.exposed_ports), "stop_signal": self.stop_signal,
                "labels": dict(self.labels)}

    @classmethod
    def from_json(cls, d: ImageConfigRecord) -> ImageConfig:
        return cls(user=d["user"], env=tuple(d["env"]), entrypoint=tuple(d["entrypoint"]),
                   cmd=tuple(d["cmd"]), working_dir=d["working_dir"], volumes=tuple(d["volumes"]),
                   exposed_ports=tuple(d["exposed_ports"]), stop_signal=d["stop_signal"],
                   labels=MappingProxyType(dict(d["labels"])))


@dataclass(frozen=True)
class ParsedConfig:
    config: ImageConfig
    diff_ids: tuple[str, ...]


def parse_config(body: bytes, what: str) -> ParsedConfig:
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise InvalidArgument(f"{what}: image config is not JSON") from e
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: image config is not a JSON object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(
            rootfs.get("diff_ids"), list):
        raise InvalidArgument(f"{what}: image config has no rootfs of type layers")
    diff_ids = tuple(validate_digest(d, f"{what}: diff ID") for d in rootfs["diff_ids"])
    c = doc.get("config") or {}
    if not isinstance(c, dict):
        raise InvalidArgument(f"{what}: image config field 'config' is not an object")
    return ParsedConfig(ImageConfig(
        user=_str(c, "User", what),
        env=_strings(c, "Env", what),
        entrypoint=_strings(c, "Entrypoint", what),
        cmd=_strings(c, "Cmd", what),
        working_dir=_str(c, "WorkingDir", what),
        volumes=_keys(c, "Volumes", what),
        exposed_ports=_keys(c, "ExposedPorts", what),
        stop_signal=_str(c, "StopSignal", what),
        labels=MappingProxyType({str(k): str(v) for k, v in _dict(c, "Labels", what).items()}),
    ), diff_ids)


def user_identity(user: str) -> tuple[int | None, str]:
    """(uid, username) as containerd reports them in ImageStatus: uid when USER's user part is numeric."""
    if not user:
        return None, ""
    name = user.split(":", 1)[0]
    try:
        return int(name, 10), ""
    except ValueError:
        return None, name


def _str(c: dict[str, object], key: str, what: str) -> str:
    value = c.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what}: image config field {key!r} is not a string")
    return value


def _strings(c: dict[str, object], key: str, what: str) -> tuple[str, ...]:
    value = c.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{what}: image config field {key!r} is not a list of strings")
    return tuple(value)


def _dict(c: dict[str, object], key: str, what: str) -> dict[str, object]:
    value = c.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: image config field {key!r} is not an object")
    return value


def _keys(c: dict[str, object], key: str, what: str) -> tuple[str, ...]:
    return tuple(sorted(str(k) for k in _dict(c, key, what)))
