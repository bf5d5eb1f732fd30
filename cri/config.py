"""pycrid's TOML configuration: every key, its default, and strict parsing.

Unknown keys are an error rather than silently ignored, so a typo in a node's config is caught at
start-up instead of showing up as a default nobody asked for. The README's config reference is
written from the defaults below.
"""
from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
CGROUP_DRIVERS = ("cgroupfs", "systemd")
NETWORK_MODES = ("auto", "bridge", "cni")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class RegistryConfig:
    mirrors: tuple[str, ...] = ()  # tried in order before the host itself
    insecure: bool = False  # plain HTTP (and unverified TLS) allowed


@dataclass(frozen=True)
class NetworkConfig:
    mode: str = "auto"
    pod_cidr: str = "10.88.0.0/16"
    bridge: str = "pycrid0"
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: tuple[str, ...] = ("/opt/cni/bin", "/usr/lib/cni")


@dataclass(frozen=True)
class MetricsConfig:
    address: str = "127.0.0.1:9300"  # "" turns the endpoint off


@dataclass(frozen=True)
class StreamingConfig:
    address: str = "127.0.0.1:0"
    idle_timeout_seconds: float = 4 * 3600.0  # a stream with no traffic for this long is closed (the kubelet's)
    token_seconds: float = 60.0  # an Exec/Attach/PortForward URL not used within this is gone


@dataclass(frozen=True)
class Config:
    listen: str = "unix:///run/pycrid/pycrid.sock"
    root: str = "/var/lib/pycrid"
    state: str = "/run/pycrid"
    log_level: str = "info"
    cgroup_driver: str = "cgroupfs"
    sandbox_image: str = "registry.k8s.io/pause:3.10"
    shutdown_grace_seconds: float = 4.0
    max_rpc_workers: int = 64
    registries: dict[str, RegistryConfig] = field(default_factory=dict)
    network: NetworkConfig = NetworkConfig()
    metrics: MetricsConfig = MetricsConfig()
    streaming: StreamingConfig = StreamingConfig()

    @property
    def socket_path(self) -> str:
        return self.listen.removeprefix("unix://")

    @property
    def forkserver_socket(self) -> str:
        return str(Path(self.state) / "forkserver.sock")

    @property
    def forkserver_log(self) -> str:
        return str(Path(self.state) / "forkserver.log")

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def load(path: str | None) -> Config:
    """Reads the TOML file at `path`; None means the embedded defaults."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config {path}: {e}") from e
    return parse(raw, source=path)


_TABLES = frozenset({"registries", "network", "metrics", "streaming"})


def parse(raw: dict[str, Any], source: str = "<config>") -> Config:
    top = _scalars(Config, {k: v for k, v in raw.items() if k not in _TABLES}, source, "")
    cfg = Config(
        **top,
        registries={host: RegistryConfig(**_scalars(RegistryConfig, _table(t, source, host), source,
                                                    f"registries.{host}."))
                    for host, t in _table(raw.get("registries", {}), source, "registries").items()},
        network=NetworkConfig(**_scalars(NetworkConfig, _table(raw.get("network", {}), source, "network"),
                                         source, "network.")),
        metrics=MetricsConfig(**_scalars(MetricsConfig, _table(raw.get("metrics", {}), source, "metrics"),
                                         source, "metrics.")),
        streaming=StreamingConfig(**_scalars(StreamingConfig,
                                             _table(raw.get("streaming", {}), source, "streaming"),
                                             source, "streaming.")),
    )
    _check(cfg, source)
    return cfg


def _table(value: Any, source: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"config {source}: [{key}] must be a table")
    return value


def _scalars(cls: type, values: dict[str, Any], source: str, prefix: str) -> dict[str, Any]:
    """Checks each key exists on `cls` with a value of the default's type (lists become tuples)."""
    known = {f.name for f in fields(cls)} - _TABLES
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"config {source}: unknown key {prefix}{key}")
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"config {source}: {prefix}{key} must be a list of strings")
            value = tuple(value)
        elif isinstance(default, bool) or isinstance(value, bool):
            if type(value) is not type(default):
                raise ConfigError(f"config {source}: {prefix}{key} must be a boolean")
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        elif not isinstance(value, type(default)):
            raise ConfigError(f"config {source}: {prefix}{key} must be a {type(default).__name__}")
        out[key] = value
    return out


def _check(cfg: Config, source: str) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"config {source}: {key}: {why}")

    if not cfg.listen.startswith("unix:///"):
        raise bad("listen", f"{cfg.listen!r} is not a unix:///absolute/path endpoint")
    for key in ("root", "state"):
        if not getattr(cfg, key).startswith("/"):
            raise bad(key, "must be an absolute path")
    if cfg.log_level not in LOG_LEVELS:
        raise bad("log_level", f"{cfg.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if cfg.cgroup_driver not in CGROUP_DRIVERS:
        raise bad("cgroup_driver", f"{cfg.cgroup_driver!r} is not one of {', '.join(CGROUP_DRIVERS)}")
    if cfg.network.mode not in NETWORK_MODES:
        raise bad("network.mode", f"{cfg.network.mode!r} is not one of {', '.join(NETWORK_MODES)}")
    try:
        if cfg.network.pod_cidr:  # "": none until the kubelet sends the node's
            ipaddress.ip_network(cfg.network.pod_cidr)
    except ValueError as e:
        raise bad("network.pod_cidr", str(e)) from e
    if cfg.max_rpc_workers < 1 or cfg.shutdown_grace_seconds < 0:
        raise bad("max_rpc_workers/shutdown_grace_seconds", "must be positive")
    for host, reg in cfg.registries.items():
        for m in reg.mirrors:
            if not m.startswith(("http://", "https://")):
                raise bad(f"registries.{host}.mirrors", f"{m!r} must start with http:// or https://")
