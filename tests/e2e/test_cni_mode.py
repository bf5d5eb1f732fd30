"""pycrid on CNI: Debian's reference plugins configured in a conf dir of the test's own. critest's
network specs pass, and a pycrid killed in the middle of a pod's network set-up leaves nothing
behind once the pod is stopped and removed after the restart."""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cni_portmap import portmap_scaffolding_removed
from tests.e2e import leaks
from tests.e2e.daemon import REPO, SESSION_BRIDGES, Daemon, crictl, start
from tests.e2e.junit import must_pass, outcomes, tally

BIN_DIR = "/usr/lib/cni"
MUST_PASS = REPO / "tests" / "e2e" / "critest-must-pass-cni.txt"


class CniConf:
    """A conflist (bridge + host-local + portmap + loopback) on a bridge and subnet of its own."""

    def __init__(self, base: Path, slow_bin: Path | None = None) -> None:
        self.tag = secrets.token_hex(2)
        self.bridge = f"pycni{self.tag}"
        SESSION_BRIDGES.add(self.bridge)
        self.conf_dir, self.ipam_dir = base / "net.d", base / "ipam"
        self.conf_dir.mkdir(parents=True)
        plugins = [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(self.ipam_dir),
                      "ranges": [[{"subnet": f"10.233.{int(self.tag, 16) % 250}.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
            {"type": "loopback"},
        ]
        if slow_bin:
            plugins.append({"type": "slow"})
        (self.conf_dir / "10-e2e.conflist").write_text(json.dumps(
            {"cniVersion": "1.0.0", "name": f"e2e-{self.tag}", "plugins": plugins}))
        bins = [BIN_DIR] + ([str(slow_bin)] if slow_bin else [])
        self.network = {"mode": "cni", "cni_conf_dir": str(self.conf_dir), "cni_bin_dirs": bins}

    def leases(self) -> list[str]:
        """host-local's address files: one per pod attached."""
        return sorted(p.name for p in self.ipam_dir.rglob("*") if p.is_file() and p.name[0].isdigit())

    def remove(self) -> None:
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)


@pytest.fixture
def cni_daemon(registry: str, tmp_path: Path) -> Iterator[tuple[Daemon, CniConf]]:
    conf = CniConf(tmp_path)
    with portmap_scaffolding_removed():
        daemon = start(tmp_path / "pycrid", registry, network=conf.network)
        yield daemon, conf
        left, _ = leaks.remove_everything(daemon)
        conf.remove()
    assert conf.leases() == [], "host-local leases outlived their pods"
    assert left.empty(), f"pycrid left behind: {left}"


def test_critest_network_specs_pass_on_cni(cni_daemon: tuple[Daemon, CniConf], tmp_path: Path) -> None:
    daemon, _ = cni_daemon
    assert json.loads(crictl(daemon, "info").stdout)["status"]["conditions"][1]["status"] is True
    report = tmp_path / "junit.xml"
    with open(tmp_path / "critest.log", "w") as log:
        subprocess.run(["critest", f"--runtime-endpoint={daemon.endpoint}", f"--image-endpoint={daemon.endpoint}",
                        f"--ginkgo.junit-report={report}", "--ginkgo.no-color",
                        "--ginkgo.focus=Networking|should support network"],
                       cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, timeout=900)
    specs = outcomes(str(report))
    print(f"CNI mode {tally(specs).line()}")
    missing = [n for n in must_pass(str(MUST_PASS)) if specs.get(n) != "passed"]
    assert not missing, f"not passing on CNI: {missing}; see {tmp_path / 'critest.log'}"


SLOW_PLUGIN = """#!/bin/sh
# A CNI plugin that passes its prevResult on, slowly: pycrid is killed while it waits.
read -r conf
[ "$CNI_COMMAND" = ADD ] && sleep 30
printf '%s' "$conf" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("prevResult", {"cniVersion": "1.0.0"})))'
"""


def test_killed_during_network_setup_then_stopped_and_removed(registry: str, tmp_path: Path) -> None:
    slow_bin = tmp_path / "slow-bin"
    slow_bin.mkdir()
    (slow_bin / "slow").write_text(SLOW_PLUGIN)
    (slow_bin / "slow").chmod(0o755)
    conf = CniConf(tmp_path, slow_bin)
    with portmap_scaffolding_removed():
        _kill_during_setup_then_clean_up(registry, tmp_path, conf)


def _kill_during_setup_then_clean_up(registry: str, tmp_path: Path, conf: CniConf) -> None:
    daemon = start(tmp_path / "pycrid", registry, network=conf.network)
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"metadata": {"name": "killed", "namespace": "e2e", "uid": "k1"}, "linux": {}}))
    runp = subprocess.Popen(["crictl", "--runtime-endpoint", daemon.endpoint, "runp", str(pod)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not conf.leases():  # the bridge plugin has attached the pod: the slow one is running
            assert time.monotonic() < deadline, "the pod's network set-up never started"
            time.sleep(0.05)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
        runp.wait(30)
        assert runp.returncode != 0
        daemon = start(tmp_path / "pycrid", registry)  # same config, slow plugin and all
        pods = json.loads(crictl(daemon, "pods", "-o", "json").stdout)["items"]
        assert [p["state"] for p in pods] == ["SANDBOX_NOTREADY"]
        crictl(daemon, "stopp", pods[0]["id"])
        crictl(daemon, "rmp", pods[0]["id"])
        assert conf.leases() == [], "the pod's address was not released"
        assert leaks.bridge_ports(conf.bridge) == (), "the pod's veth outlived it"
    finally:
        runp.kill()
        left, _ = leaks.remove_everything(daemon)
        conf.remove()
    assert left.empty(), f"pycrid left behind: {left}"
