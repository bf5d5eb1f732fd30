"""Test doubles for the seams of runtime/network: PluginExec, PodLinks, Sysctls and the nft command.

Each records what it was asked and keeps just enough state to answer like the real thing, so unit
tests of the plugins run without root and assert on exactly what would have reached the kernel.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import Internal
from runtime.network.links import VethAttachment
from runtime.network.plugin import NetworkStatus, PodCidrs, PodNetwork
from runtime.network.plugin_exec import ExecResult

Handler = Callable[[str, Mapping[str, str], bytes], ExecResult]  # (CNI_COMMAND, env, stdin) -> result


@dataclass(frozen=True)
class ExecCall:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    stdin: bytes

    @property
    def binary(self) -> str:
        return os.path.basename(self.argv[0])

    @property
    def command(self) -> str:
        return self.env.get("CNI_COMMAND", "")

    @property
    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = json.loads(self.stdin)  # pycrid sends a plugin its conf as a JSON object
        return conf


class FakeExec:
    """PluginExec answering by binary name with a handler; unknown binaries exit 1."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.calls: list[ExecCall] = []

    def run(self, argv: Sequence[str], *, stdin: bytes = b"", env: Mapping[str, str] | None = None,
            timeout: float) -> ExecResult:
        call = ExecCall(tuple(argv), dict(env or {}), stdin)
        self.calls.append(call)
        handler = self.handlers.get(call.binary)
        if handler is None:
            return ExecResult(1, b"", f"fake: no handler for {call.binary}".encode())
        return handler(call.command, call.env, stdin)


def cni_ok(result: Mapping[str, Any] | None = None) -> ExecResult:
    return ExecResult(0, json.dumps(result).encode() if result is not None else b"", b"")


def cni_error(code: int, msg: str, details: str = "") -> ExecResult:
    error = {"cniVersion": "1.0.0", "code": code, "msg": msg, "details": details}
    return ExecResult(1, json.dumps(error).encode(), b"")


def ipam_plugin(address: str, gateway: str = "") -> Handler:
    """A main plugin: ADD answers a 1.0.0 result with `address` on eth0; other commands succeed."""
    def handle(command: str, env: Mapping[str, str], stdin: bytes) -> ExecResult:
        if command != "ADD":
            return cni_ok()
        ip = {"address": address, "interface": 1, **({"gateway": gateway} if gateway else {})}
        pod_end = {"name": env["CNI_IFNAME"], "sandbox": env["CNI_NETNS"]}
        return cni_ok({"cniVersion": "1.0.0", "ips": [ip], "interfaces": [{"name": "cni0"}, pod_end]})
    return handle


def chained_plugin(command: str, env: Mapping[str, str], stdin: bytes) -> ExecResult:
    """A chained plugin (like portmap): ADD passes prevResult through."""
    if command == "ADD":
        return cni_ok(json.loads(stdin).get("prevResult"))
    return cni_ok()


class FakeNft:
    """Stands in for `Nftables`: keeps the hostports rules of one table, with handles, in memory."""

    _ADD = re.compile(r'add rule inet (\S+) (\S+) (.*) comment "([^"]*)"$')
    _DELETE = re.compile(r"delete rule inet (\S+) (\S+) handle (\d+)$")

    def __init__(self, installed: bool = True) -> None:
        self.installed = installed
        self.scripts: list[str] = []
        self.tables: set[str] = set()
        self.rules: dict[int, tuple[str, str, str, str]] = {}  # handle -> (table, chain, body, comment)
        self._failure: tuple[str, str] | None = None
        self._handle = 100

    def fail(self, when_script_has: str, message: str) -> None:
        """The next apply of a script containing `when_script_has` fails with `message`, changing nothing."""
        self._failure = (when_script_has, message)

    def available(self) -> bool:
        return self.installed

    def apply(self, script: str, what: str) -> None:
        if self._failure is not None and self._failure[0] in script:
            message, self._failure = self._failure[1], None
            raise Internal(f"{what}: nft failed: {message}")
        self.scripts.append(script)
        for line in script.splitlines():
            if line.startswith("add table inet "):
                self.tables.add(line.split()[3])
            elif line.startswith("delete table inet "):
                table = line.split()[3]
                self.tables.discard(table)
                self.rules = {h: r for h, r in self.rules.items() if r[0] != table}
            elif m := self._ADD.match(line):
                self._handle += 1
                self.rules[self._handle] = (m[1], m[2], m[3], m[4])
            elif m := self._DELETE.match(line):
                del self.rules[int(m[3])]

    def list_table(self, table: str) -> dict[str, Any] | None:
        if table not in self.tables:
            return None
        return {"nftables": [{"rule": {"family": "inet", "table": t, "chain": chain, "handle": h,
                                       "comment": c}}
                             for h, (t, chain, _, c) in sorted(self.rules.items()) if t == table]}


@dataclass
class FakeLinks:
    """PodLinks over dicts; `fail` maps a method name to the error its next call raises."""

    bridges: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses
    veths: dict[str, VethAttachment] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)
    mtu: int = 1500

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail.pop(method)

    def ensure_bridge(self, name: str, addresses: Sequence[str]) -> int:
        self._maybe_fail("ensure_bridge")
        have = self.bridges.setdefault(name, [])
        have += [a for a in addresses if a not in have]
        return self.mtu

    def attach(self, a: VethAttachment) -> None:
        self.veths[a.host_ifname] = a  # the real one also leaves the veth when configuring fails
        self._maybe_fail("attach")

    def delete(self, ifname: str) -> bool:
        self._maybe_fail("delete")
        return self.veths.pop(ifname, None) is not None or self.bridges.pop(ifname, None) is not None

    def ports_of(self, bridge: str) -> tuple[str, ...]:
        return tuple(name for name, a in self.veths.items() if a.bridge == bridge)


@dataclass
class FakeSysctls:
    values: dict[str, str] = field(default_factory=dict)

    def ensure(self, key: str, value: str) -> None:
        self.values[key] = value


class FakeNetworkPlugin:
    """A NetworkPlugin for tests of its callers: records attachments, hands out fixed IPs, and can
    be told it is not ready."""

    name = "fake"

    def __init__(self, pod_cidr: str = "10.88.0.0/16", ips: tuple[str, ...] = ("10.88.0.2",)) -> None:
        self._cidrs = PodCidrs(pod_cidr)
        self.ips = ips
        self.ready = NetworkStatus(ready=True)
        self.attached: dict[str, PodNetwork] = {}
        self.setup_error: Exception | None = None  # raised by the next setups, when set
        self.teardown_error: Exception | None = None

    def status(self) -> NetworkStatus:
        return self.ready

    def update_pod_cidr(self, cidr: str) -> None:
        self._cidrs.update(cidr)

    @property
    def pod_cidr(self) -> str:
        return str(self._cidrs)

    def setup(self, pod: PodNetwork) -> tuple[str, ...]:
        if self.setup_error:
            raise self.setup_error
        self.attached[pod.pod_id] = pod
        return self.ips

    def teardown(self, pod: PodNetwork) -> None:
        if self.teardown_error:
            raise self.teardown_error
        self.attached.pop(pod.pod_id, None)
