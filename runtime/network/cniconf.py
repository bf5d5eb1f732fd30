"""CNI network configuration: parsing a file and choosing the one to use from a conf dir (pure).

Like libcni and the kubelet's old CNI code: candidates are `*.conflist`, `*.conf` and `*.json`,
taken in file-name order; the first one that parses is the network, and files that do not parse are
reported but skipped. A single-plugin `.conf` (or a `.json` without "plugins") becomes a list of
one. When a list names `cniVersions` (spec 1.1) the highest version we speak is used.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidArgument

EXTENSIONS = (".conflist", ".conf", ".json")
SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # the spec's rule; it also makes a safe file name


@dataclass(frozen=True)
class PluginConf:
    type: str
    capabilities: frozenset[str]  # the runtimeConfig keys this plugin asks for
    raw: Mapping[str, Any] = field(repr=False)  # the plugin's object as written


@dataclass(frozen=True)
class NetworkConf:
    name: str
    cni_version: str
    plugins: tuple[PluginConf, ...]
    source: str  # the file it came from
    disable_check: bool = False
    disable_gc: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the list, as cached for DEL


@dataclass(frozen=True)
class ConfChoice:
    network: NetworkConf | None
    errors: tuple[str, ...]  # "<file>: <why>" for each candidate skipped before the choice


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError as e:
        raise InvalidArgument(f"CNI version {version!r} is not dotted numbers") from e


def parse_network(data: bytes, source: str) -> NetworkConf:
    """One conf file's network; InvalidArgument says what is wrong with it."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"{source}: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{source}: not a JSON object")
    if source.endswith(".conflist") or "plugins" in doc:
        return _from_list(doc, source)
    if not isinstance(doc.get("type"), str) or not doc["type"]:
        raise InvalidArgument(f"{source}: network type not found")
    wrapped = {"cniVersion": doc.get("cniVersion", "0.1.0"), "name": doc.get("name"), "plugins": [doc]}
    return _from_list(wrapped, source)


def choose_network(files: Sequence[tuple[str, bytes]]) -> ConfChoice:
    """The first valid network among (file path, content) pairs of one dir, in file-name order."""
    errors: list[str] = []
    for name, data in sorted(files):
        if not name.endswith(EXTENSIONS):
            continue
        try:
            return ConfChoice(parse_network(data, name), tuple(errors))
        except InvalidArgument as e:
            errors.append(str(e))
    return ConfChoice(None, tuple(errors))


def _from_list(doc: Mapping[str, Any], source: str) -> NetworkConf:
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{source}: missing network name")
    if not _NETWORK_NAME.fullmatch(name):
        raise InvalidArgument(f"{source}: network name {name!r} is not letters, digits, '_', '.' and '-'")
    plugins = doc.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise InvalidArgument(f"{source}: network {name!r} has no plugins")
    parsed = []
    for i, p in enumerate(plugins):
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
            raise InvalidArgument(f"{source}: plugin {i} of network {name!r} has no type")
        caps = p.get("capabilities", {})
        if not isinstance(caps, dict):
            raise InvalidArgument(f"{source}: plugin {p['type']!r}: capabilities is not an object")
        parsed.append(PluginConf(p["type"], frozenset(k for k, v in caps.items() if v is True), p))
    version = _pick_version(doc, source)
    return NetworkConf(name=name, cni_version=version, plugins=tuple(parsed), source=source,
                       disable_check=doc.get("disableCheck") is True, disable_gc=doc.get("disableGC") is True,
                       raw={**doc, "cniVersion": version})


def _pick_version(doc: Mapping[str, Any], source: str) -> str:
    versions = doc.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise InvalidArgument(f"{source}: cniVersions is not a list of strings")
        usable: list[str] = [v for v in versions if v in SUPPORTED_VERSIONS]
        if not usable:
            raise InvalidArgument(f"{source}: none of cniVersions {versions} is supported "
                                  f"(pycrid speaks {', '.join(SUPPORTED_VERSIONS)})")
        return max(usable, key=version_tuple)
    version = doc.get("cniVersion", "0.1.0")
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise InvalidArgument(f"{source}: cniVersion {version!r} is not supported "
                              f"(pycrid speaks {', '.join(SUPPORTED_VERSIONS)})")
    return version
