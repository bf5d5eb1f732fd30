"""Choosing the pod network at start-up (the `[network] mode` setting).

- "bridge": the built-in bridge (bridge.py). Needs nothing but a Linux kernel with nftables.
- "cni": CNI plugins configured in the conf dir (cni.py). NetworkReady stays false until a valid
  network config appears there, as with containerd.
- "auto": CNI when the conf dir holds a valid network config at start, else the bridge. The choice
  is made once: a node that started on the bridge keeps it until restarted, so running pods never
  change hands between two networks.

State lives under `state_dir`: `bridge/` (the IP leases) and `cni-cache/` (CNI attachments). Both
must survive agent restarts (put them under the persistent root, not a tmpfs), and both are
reconciled against the live pods at recovery (`reconcile(live_pod_ids)` on either plugin).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.errors import InvalidArgument

if TYPE_CHECKING:
    from runtime.network.bridge import BridgeNetwork
    from runtime.network.cni import CniNetwork

MODES = ("auto", "bridge", "cni")


def new_network_plugin(mode: str, pod_cidr: str, bridge_name: str, cni_conf_dir: Path,
                       cni_bin_dirs: Sequence[Path], state_dir: Path) -> BridgeNetwork | CniNetwork:
    if mode not in MODES:
        raise InvalidArgument(f"network mode {mode!r} is not one of {', '.join(MODES)}")
    # Each network's modules are loaded only if it is chosen: a node runs one of them for its
    # whole life (the CNI client and its caches, or the bridge's netlink, nftables and IPAM).
    if mode == "auto":
        from runtime.network.cniwatch import ConfDirWatch

        mode = "cni" if ConfDirWatch(cni_conf_dir).current().network is not None else "bridge"
    if mode == "cni":
        from runtime.network.cni import CniNetwork

        return CniNetwork(pod_cidr, cni_conf_dir, cni_bin_dirs, state_dir / "cni-cache")
    from runtime.network.bridge import BridgeNetwork

    return BridgeNetwork(pod_cidr, state_dir / "bridge", bridge_name)
