"""Pod networking by CNI plugins (spec 1.0/1.1), for clusters that bring their own network.

The network is the first valid list in the conf dir (cniconf.py), re-read whenever the dir changes
(cniwatch.py). ADD runs the plugins in order, each getting the previous one's result; DEL runs them
in reverse with ADD's result as `prevResult`, and always with the conf ADD used, read back from the
attachment cache (cnicache.py), so a conf that changed or vanished since does not strand a pod.
CHECK and, for 1.1 lists, STATUS and GC are supported; a plugin that does not know STATUS is ready.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.errors import FailedPrecondition, Internal, PycridError
from runtime.ids import check_id
from runtime.network.cnicache import Attachment, AttachmentCache
from runtime.network.cniconf import NetworkConf, parse_network, version_tuple
from runtime.network.cniexec import CniExecutor, CniTimeouts, PluginFailed
from runtime.network.cnirequest import cni_args, gc_stdin, plugin_env, plugin_stdin, runtime_values
from runtime.network.cniresult import ERR_INCOMPATIBLE_VERSION, ERR_INVALID_ENVIRONMENT, ResultError, pod_ips
from runtime.network.cniwatch import ConfDirWatch
from runtime.network.plugin import SAVED_POD_CIDR, NetworkStatus, PodCidrs, PodNetwork
from runtime.network.plugin_exec import PluginExec, SubprocessExec

log = logging.getLogger(__name__)
IFNAME = "eth0"
NOT_READY = "NetworkPluginNotReady"
DEFAULT_TIMEOUTS = CniTimeouts()


class CniNetwork:
    name = "cni"

    def __init__(self, pod_cidr: str, conf_dir: Path, bin_dirs: Sequence[Path], cache_dir: Path, *,
                 runner: PluginExec | None = None, timeouts: CniTimeouts = DEFAULT_TIMEOUTS,
                 status_ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        """status_ttl: how long a STATUS answer (1.1 lists) is reused before plugins are asked again."""
        self._cidrs = PodCidrs(pod_cidr, cache_dir / SAVED_POD_CIDR)
        self._watch = ConfDirWatch(conf_dir)
        self._exec = CniExecutor(bin_dirs, runner or SubprocessExec(), timeouts)
        self._cache = AttachmentCache(cache_dir)
        self._status_ttl = status_ttl
        self._clock = clock
        self._status_memo: tuple[NetworkConf, float, NetworkStatus] | None = None

    @property
    def pod_cidr(self) -> str:
        return str(self._cidrs)

    def update_pod_cidr(self, cidr: str) -> None:
        self._cidrs.update(cidr)  # it reaches plugins only as the ipRanges capability

    def status(self) -> NetworkStatus:
        choice = self._watch.current()
        if choice.network is None:
            why = f": {'; '.join(choice.errors)}" if choice.errors else ""
            return NetworkStatus(False, NOT_READY, f"cni config load failed: no network config found in "
                                                   f"{self._watch.conf_dir}{why}")
        network = choice.network
        try:
            for plugin in network.plugins:
                self._exec.find(plugin.type)
        except FailedPrecondition as e:
            return NetworkStatus(False, NOT_READY, f"cni plugin not initialized: {e}")
        if version_tuple(network.cni_version) < (1, 1, 0):
            return NetworkStatus(ready=True)
        memo = self._status_memo
        if memo is not None and memo[0] == network and self._clock() - memo[1] < self._status_ttl:
            return memo[2]
        answer = self._ask_status(network)
        self._status_memo = (network, self._clock(), answer)
        return answer

    def setup(self, pod: PodNetwork) -> tuple[str, ...]:
        check_id(pod.pod_id, "pod sandbox")
        what = _describe(pod)
        network = self._network_for(what)
        attachment = self._attachment(network, pod)
        self._cache.save(attachment)  # before ADD: a crash mid-ADD still leaves DEL what it needs
        try:
            result = self._add(network, attachment, f"{what} in network {network.name!r}")
            self._cache.save(replace(attachment, result=result))
            return pod_ips(result, IFNAME)
        except ResultError as e:
            self._undo(attachment, what)
            raise Internal(f"setting up the network of {what}: CNI result: {e}") from e
        except PycridError:
            self._undo(attachment, what)
            raise

    def teardown(self, pod: PodNetwork) -> None:
        check_id(pod.pod_id, "pod sandbox")
        attachments = self._cache.of_pod(pod.pod_id)
        if not attachments:
            # No record (an older agent, a lost cache): DEL with today's conf; DEL of nothing succeeds.
            network = self._watch.current().network
            if network is None:
                log.warning("no CNI record and no CNI conf for %s: nothing to tear down", _describe(pod))
                return
            attachments = (self._attachment(network, pod),)
        for attachment in attachments:
            self._delete(attachment, what=_describe(pod))

    def check(self, pod: PodNetwork) -> None:
        """CHECK (spec ≥ 0.4.0, unless the list sets disableCheck) of each of the pod's attachments."""
        for a in self._cache.of_pod(pod.pod_id):
            network = _cached_network(a)
            if a.result is None or network.disable_check or version_tuple(network.cni_version) < (0, 4, 0):
                continue
            env = self._env("CHECK", a)
            for plugin in network.plugins:
                self._exec.run(plugin.type, "CHECK", env, plugin_stdin(network, plugin, a.runtime, a.result),
                               f"{_describe(pod)} in network {a.network!r}")

    def reconcile(self, live_pod_ids: Collection[str]) -> tuple[str, ...]:
        """At recovery, before serving: DEL the attachments of pods that are gone, then GC (1.1 lists);
        returns the ids of the pods whose attachments were deleted."""
        live = set(live_pod_ids)
        gone = []
        for a in self._cache.all():
            if a.pod_id not in live:
                try:
                    self._delete(a)
                    gone.append(a.pod_id)
                except PycridError as e:
                    log.warning("reconciling CNI attachment of gone pod %s: %s", a.pod_id[:12], e)
        network = self._watch.current().network
        if network is not None and version_tuple(network.cni_version) >= (1, 1, 0) and not network.disable_gc:
            valid = [(a.pod_id, a.ifname) for a in self._cache.all() if a.network == network.name]
            for plugin in network.plugins:
                try:
                    env = plugin_env("GC", self._exec.cni_path, self._exec.base_env())
                    self._exec.run(plugin.type, "GC", env, gc_stdin(network, plugin, valid),
                                   f"network {network.name!r}")
                except PycridError as e:
                    log.warning("CNI GC of network %r: %s", network.name, e)
        return tuple(sorted(set(gone)))

    def _attachment(self, network: NetworkConf, pod: PodNetwork) -> Attachment:
        cidrs = self._cidrs.get()
        return Attachment(network=network.name, pod_id=pod.pod_id, ifname=IFNAME, netns=pod.netns_path,
                          cni_args=cni_args(pod), conf=network.raw, source=network.source,
                          runtime=runtime_values(pod, cidrs))

    def _network_for(self, what: str) -> NetworkConf:
        choice = self._watch.current()
        if choice.network is None:
            why = f" ({'; '.join(choice.errors)})" if choice.errors else ""
            raise FailedPrecondition(f"network of {what}: no valid CNI network config in "
                                     f"{self._watch.conf_dir}{why}")
        return choice.network

    def _add(self, network: NetworkConf, a: Attachment, what: str) -> dict[str, Any]:
        env = self._env("ADD", a)
        result: dict[str, Any] | None = None
        for plugin in network.plugins:
            stdin = plugin_stdin(network, plugin, a.runtime, result)
            answer = self._exec.run(plugin.type, "ADD", env, stdin, what)
            if answer is None:
                raise Internal(f"CNI plugin {plugin.type!r} ADD for {what}: printed no result")
            result = answer
        assert result is not None  # a list has at least one plugin (cniconf)
        return result

    def _delete(self, a: Attachment, what: str = "") -> None:
        """DEL in reverse order with the conf and values ADD used; the record goes only when all succeed."""
        network = _cached_network(a)
        prev = a.result if version_tuple(network.cni_version) >= (0, 4, 0) else None
        env = self._env("DEL", a)
        label = f"{what or 'pod ' + a.pod_id[:12]} in network {a.network!r}"
        for plugin in reversed(network.plugins):
            self._exec.run(plugin.type, "DEL", env, plugin_stdin(network, plugin, a.runtime, prev), label)
        self._cache.remove(a)

    def _undo(self, a: Attachment, what: str) -> None:
        try:
            self._delete(a, what)
        except PycridError as e:
            log.warning("undoing the failed ADD of %s (its record stays for teardown): %s", what, e)

    def _env(self, command: str, a: Attachment) -> dict[str, str]:
        # The spec lets DEL run with no netns when the pod's is already gone; plugins then clean host state.
        netns = a.netns if command != "DEL" or os.path.exists(a.netns) else ""
        return plugin_env(command, self._exec.cni_path, self._exec.base_env(), container_id=a.pod_id,
                          netns=netns, ifname=a.ifname, args=a.cni_args)

    def _ask_status(self, network: NetworkConf) -> NetworkStatus:
        env = plugin_env("STATUS", self._exec.cni_path, self._exec.base_env())
        for plugin in network.plugins:
            try:
                self._exec.run(plugin.type, "STATUS", env, plugin_stdin(network, plugin, {}, None),
                               f"network {network.name!r}")
            except PluginFailed as e:
                if e.error.code in (ERR_INCOMPATIBLE_VERSION, ERR_INVALID_ENVIRONMENT):
                    continue  # predates STATUS: nothing to ask it, so it counts as ready
                return NetworkStatus(False, NOT_READY, f"cni plugin not ready: {e}")
            except PycridError as e:
                return NetworkStatus(False, NOT_READY, f"cni plugin not ready: {e}")
        return NetworkStatus(ready=True)


def _cached_network(a: Attachment) -> NetworkConf:
    try:
        return parse_network(json.dumps(a.conf).encode(), a.source)
    except PycridError as e:
        raise Internal(f"CNI record of pod {a.pod_id[:12]} in network {a.network!r}: {e}") from e


def _describe(pod: PodNetwork) -> str:
    return f"pod {pod.namespace}/{pod.name} ({pod.pod_id[:12]})"
