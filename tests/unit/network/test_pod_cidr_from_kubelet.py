"""`pod_cidr = ""`: the bridge network has no range of its own and waits for the kubelet's
(UpdateRuntimeConfig). Until then it reports NetworkReady false, as containerd does, so the node is
not Ready and no pod gets an address from the wrong range (issue 13)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import FailedPrecondition
from runtime.network.bridge import BridgeNetwork
from runtime.network.plugin import SAVED_POD_CIDR, PodCidrs, PodNetwork
from runtime.network.testing import FakeLinks, FakeNft, FakeSysctls

POD = PodNetwork(pod_id="a" * 64, name="web", namespace="prod", uid="u", netns_path="/run/netns/p")


def bridge(state: Path) -> tuple[BridgeNetwork, FakeLinks]:
    links = FakeLinks()
    return BridgeNetwork("", state, "pyct0", links=links, nft=FakeNft(), sysctls=FakeSysctls()), links


def test_no_range_until_the_kubelet_sends_one(tmp_path: Path) -> None:
    net, links = bridge(tmp_path)
    status = net.status()
    assert not status.ready
    assert status.reason == "NetworkPluginNotReady" and "UpdateRuntimeConfig" in status.message
    with pytest.raises(FailedPrecondition, match="no pod CIDR yet"):
        net.setup(POD)
    assert links.bridges == {} and links.veths == {}  # nothing made on the node meanwhile

    net.update_pod_cidr("")  # the kubelet's "no change" is not a range either
    assert not net.status().ready

    net.update_pod_cidr("10.244.7.0/24")
    assert net.status().ready
    assert net.setup(POD) == ("10.244.7.2",)


def test_a_range_saved_by_an_earlier_run_is_ready_at_once(tmp_path: Path) -> None:
    PodCidrs("", tmp_path / SAVED_POD_CIDR).update("10.244.7.0/24")
    net, _ = bridge(tmp_path)
    assert net.status().ready
    assert net.pod_cidr == "10.244.7.0/24"


def test_an_empty_default_is_no_range(tmp_path: Path) -> None:
    assert PodCidrs("").get() == ()
    assert PodCidrs("", tmp_path / "pod-cidr.json").get() == ()


def test_a_new_range_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cidrs = PodCidrs("", tmp_path / "pod-cidr.json")
    with caplog.at_level("INFO", logger="runtime.network.plugin"):
        cidrs.update("10.244.7.0/24")
        cidrs.update("10.244.7.0/24")  # the kubelet sends it again: nothing new
    assert [r.getMessage() for r in caplog.records] == ["pod CIDR 10.244.7.0/24 from the kubelet (was none)"]
