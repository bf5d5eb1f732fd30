from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.network.bridge import BridgeNetwork
from runtime.network.cni import CniNetwork
from runtime.network.factory import new_network_plugin

ROOT = Path(__file__).resolve().parents[3]


def make(mode: str, root: Path) -> object:
    return new_network_plugin(mode, "10.88.0.0/16", "pycrid0", root / "net.d", [root / "bin"], root / "state")


def test_auto_is_the_bridge_without_a_valid_conf(tmp_path: Path) -> None:
    assert isinstance(make("auto", tmp_path), BridgeNetwork)  # no conf dir at all
    (tmp_path / "net.d").mkdir()
    (tmp_path / "net.d" / "10-broken.conflist").write_text("{")
    assert isinstance(make("auto", tmp_path), BridgeNetwork)


def test_auto_is_cni_with_a_valid_conf(tmp_path: Path) -> None:
    (tmp_path / "net.d").mkdir()
    (tmp_path / "net.d" / "10-k8s.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "k8s", "plugins": [{"type": "bridge"}]}))
    assert isinstance(make("auto", tmp_path), CniNetwork)


def test_explicit_modes(tmp_path: Path) -> None:
    assert isinstance(make("bridge", tmp_path), BridgeNetwork)
    cni = make("cni", tmp_path)
    assert isinstance(cni, CniNetwork) and not cni.status().ready
    with pytest.raises(InvalidArgument, match="'flannel' is not one of auto, bridge, cni"):
        make("flannel", tmp_path)


@pytest.mark.parametrize(("mode", "other"), [("bridge", "runtime.network.cni"), ("cni", "runtime.network.bridge")])
def test_only_the_chosen_network_is_loaded(tmp_path: Path, mode: str, other: str) -> None:
    probe = ("import json, sys; from pathlib import Path; from runtime.network.factory import new_network_plugin; "
             f"r = Path({str(tmp_path)!r}); "
             f"new_network_plugin({mode!r}, '10.88.0.0/16', 'p0', r / 'net.d', [r / 'bin'], r / 'state'); "
             "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert f"runtime.network.{mode}" in loaded
    assert [m for m in loaded if m == other or m.startswith(other + ".")] == []
