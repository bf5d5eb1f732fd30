from __future__ import annotations

from pathlib import Path

import pytest

from cri.config import Config, ConfigError, load, parse

CONTRACT = """
listen = "unix:///run/pycrid/pycrid.sock"
root = "/var/lib/pycrid"
state = "/run/pycrid"
log_level = "info"
cgroup_driver = "cgroupfs"
sandbox_image = "registry.k8s.io/pause:3.10"
[registries."registry.k8s.io"]
mirrors = ["http://127.0.0.1:5000"]
[registries."127.0.0.1:5000"]
insecure = true
[network]
mode = "auto"
pod_cidr = "10.88.0.0/16"
[metrics]
address = "127.0.0.1:9300"
[streaming]
address = "127.0.0.1:0"
"""


def test_no_file_means_the_embedded_defaults() -> None:
    cfg = load(None)
    assert cfg == Config()
    assert cfg.socket_path == "/run/pycrid/pycrid.sock"
    assert (cfg.root, cfg.state, cfg.cgroup_driver) == ("/var/lib/pycrid", "/run/pycrid", "cgroupfs")


def test_the_documented_contract_parses(tmp_path: Path) -> None:
    path = tmp_path / "pycrid.toml"
    path.write_text(CONTRACT)
    cfg = load(str(path))
    assert cfg.registries["registry.k8s.io"].mirrors == ("http://127.0.0.1:5000",)
    assert cfg.registries["127.0.0.1:5000"].insecure is True
    assert cfg.network.pod_cidr == "10.88.0.0/16"
    assert cfg.metrics.address == "127.0.0.1:9300"
    assert cfg.streaming.address == "127.0.0.1:0"


@pytest.mark.parametrize("raw, complaint", [
    ({"lisen": "unix:///x"}, "unknown key lisen"),
    ({"network": {"podcidr": "10.0.0.0/8"}}, "unknown key network.podcidr"),
    ({"registries": {"docker.io": {"mirrors": "http://x"}}}, "registries.docker.io.mirrors must be a list"),
    ({"registries": {"docker.io": {"mirrors": ["127.0.0.1:5000"]}}}, "must start with http"),
    ({"registries": {"docker.io": {"insecure": "yes"}}}, "insecure must be a boolean"),
    ({"listen": "tcp://0.0.0.0:1"}, "not a unix:///absolute/path"),
    ({"root": "relative"}, "root: must be an absolute path"),
    ({"log_level": "loud"}, "log_level"),
    ({"cgroup_driver": "cgroupv3"}, "cgroup_driver"),
    ({"network": {"pod_cidr": "10.88.0.1/16"}}, "network.pod_cidr"),
    ({"max_rpc_workers": "8"}, "max_rpc_workers must be a int"),
    ({"metrics": "on"}, "[metrics] must be a table"),
])
def test_bad_config_names_the_key(raw: dict, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        parse(raw, source="t.toml")


def test_unreadable_or_broken_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.toml"):
        load(str(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("listen = ")
    with pytest.raises(ConfigError, match="broken.toml"):
        load(str(broken))


def test_systemd_driver_is_selectable() -> None:
    assert parse({"cgroup_driver": "systemd"}).cgroup_driver == "systemd"


def test_an_empty_pod_cidr_waits_for_the_kubelets() -> None:
    assert parse({"network": {"pod_cidr": ""}}).network.pod_cidr == ""
