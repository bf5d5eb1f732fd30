"""The node's pod CIDR that the kubelet sent outlives a restart of pycrid (issue 13: without it, a
restarted pycrid fell back to its configured default and gave pods addresses outside the node's
range)."""
from __future__ import annotations

from pathlib import Path

from runtime.network.plugin import PodCidrs


def test_the_kubelets_cidr_wins_over_the_default_after_a_restart(tmp_path: Path) -> None:
    saved = tmp_path / "network" / "pod-cidr.json"
    first = PodCidrs("10.88.0.0/16", saved)
    assert first.get() == ("10.88.0.0/16",)
    first.update("10.244.3.0/24")
    assert PodCidrs("10.88.0.0/16", saved).get() == ("10.244.3.0/24",)


def test_no_change_from_the_kubelet_keeps_what_was_saved(tmp_path: Path) -> None:
    saved = tmp_path / "pod-cidr.json"
    PodCidrs("10.88.0.0/16", saved).update("10.244.3.0/24,fd00:10:244:3::/64")
    again = PodCidrs("10.88.0.0/16", saved)
    again.update("")  # the kubelet's "no change"
    assert PodCidrs("10.88.0.0/16", saved).get() == ("10.244.3.0/24", "fd00:10:244:3::/64")


def test_an_unreadable_saved_cidr_falls_back_to_the_default(tmp_path: Path) -> None:
    saved = tmp_path / "pod-cidr.json"
    saved.write_text('{"pod_cidr": "not a network"}')
    assert PodCidrs("10.88.0.0/16", saved).get() == ("10.88.0.0/16",)
    saved.write_text("{torn")
    assert PodCidrs("10.88.0.0/16", saved).get() == ("10.88.0.0/16",)
