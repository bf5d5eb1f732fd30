"""The built-in bridge network on the real kernel: throwaway netns "pods" on a bridge and CIDR unique to
the test, traffic only between namespaces this test made and the host, and a host left as found.

IPv4 (and IPv6) forwarding is switched on by the plugin, as a node needs; the module puts the
previous values back when it is done.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import FailedPrecondition
from runtime.ids import new_id
from runtime.linux.syscalls import LinuxSyscalls
from runtime.network.bridge import BridgeNetwork, host_ifname
from runtime.network.in_netns import run_in_netns
from runtime.network.links import NetlinkLinks
from runtime.network.plugin import PodNetwork, PortMapping

PROBE = str(Path(__file__).parents[1] / "fixtures" / "cni" / "netprobe.py")
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)


def probe(netns: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    prefix = ("ip", "netns", "exec", netns) if netns else ()
    return sh(*prefix, sys.executable, PROBE, *args, check=False)


def host_state() -> dict[str, object]:
    """What a test could leave behind: links, named netns, the whole nft ruleset."""
    links = [line.split(": ")[1].split("@")[0] for line in sh("ip", "-o", "link", "show").stdout.splitlines()]
    return {"links": sorted(links), "netns": sorted(sh("ip", "netns", "list").stdout.split()),
            "ruleset": sh("nft", "-s", "list", "ruleset").stdout}  # -s: without counters


@pytest.fixture(scope="module", autouse=True)
def _restore_sysctls() -> Iterator[None]:
    saved = {k: Path("/proc/sys", k).read_text() for k in SYSCTLS if Path("/proc/sys", k).exists()}
    yield
    for key, value in saved.items():
        Path("/proc/sys", key).write_text(value)


class Node:
    """A BridgeNetwork on its own bridge, CIDR and state dir, and the netns it made for pods."""

    def __init__(self, state: Path, cidr: str) -> None:
        self.tag = secrets.token_hex(3)
        self.bridge = f"pyct{self.tag}"
        self.state = state
        self.net = BridgeNetwork(cidr, state, self.bridge)
        self.namespaces: list[str] = []
        self.pods: list[PodNetwork] = []
        self.servers: list[subprocess.Popen[str]] = []

    def netns(self, role: str) -> str:
        name = f"pycrid-t-{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        return name

    def pod(self, role: str, *mappings: PortMapping) -> tuple[PodNetwork, tuple[str, ...]]:
        ns = self.netns(role)
        pod = PodNetwork(pod_id=new_id(), name=role, namespace="test", uid=new_id()[:8],
                         netns_path=f"/run/netns/{ns}", port_mappings=mappings)
        self.pods.append(pod)
        return pod, self.net.setup(pod)

    def serve(self, netns: str, port: int) -> None:
        server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, PROBE, "whoami", str(port)],
                                  stdout=subprocess.PIPE, text=True)
        self.servers.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        for pod in self.pods:
            self.net.teardown(pod)
        self.net.uninstall()
        for ns in self.namespaces:
            sh("ip", "netns", "delete", ns, check=False)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    before = host_state()
    third = 100 + secrets.randbelow(100)
    n = Node(tmp_path / "bridge", f"10.250.{third}.0/24")
    try:
        yield n
    finally:
        n.close()
        leases = json.loads((n.state / "leases.json").read_text())["leases"] if n.state.exists() else {}
        assert leases == {}
        assert host_state() == before


def free_port() -> int:
    return 20000 + secrets.randbelow(20000)


def gateway(ip: str) -> str:
    return ip.rsplit(".", 1)[0] + ".1"


def test_status_makes_the_bridge(node: Node) -> None:
    assert node.net.status().ready
    assert sh("ip", "-d", "link", "show", node.bridge).stdout.count("bridge") >= 1
    assert Path(f"/proc/sys/net/ipv4/conf/{node.bridge}/route_localnet").read_text().strip() == "1"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"


def test_pods_reach_each_other_the_gateway_and_the_outside_through_nat(node: Node) -> None:
    a, (ip_a,) = node.pod("a")
    b, (ip_b,) = node.pod("b")
    assert probe(node.namespaces[0], "ping", ip_b).returncode == 0
    assert probe(node.namespaces[1], "ping", ip_a).returncode == 0
    assert probe(node.namespaces[0], "ping", gateway(ip_a)).returncode == 0
    # "Outside": a netns behind its own veth and /30, with no route back to the pod CIDR.
    outside = node.netns("out")
    host_end, subnet = f"pyco{node.tag}", f"10.251.{secrets.randbelow(250)}"
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", outside)
    try:
        sh("ip", "addr", "add", f"{subnet}.1/30", "dev", host_end)
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "netns", "exec", outside, "ip", "addr", "add", f"{subnet}.2/30", "dev", "eth0")
        sh("ip", "netns", "exec", outside, "ip", "link", "set", "eth0", "up")
        port = free_port()
        node.serve(outside, port)
        seen = probe(node.namespaces[0], "get", f"http://{subnet}.2:{port}/")
        assert (seen.returncode, seen.stdout) == (0, f"{subnet}.1"), seen.stderr  # the node's address: NAT
    finally:
        sh("ip", "link", "delete", host_end, check=False)


def test_host_port_reaches_the_pod_from_the_host_and_from_pods(node: Node) -> None:
    host_port, container_port = free_port(), 8080
    a, (ip_a,) = node.pod("a", PortMapping("TCP", container_port, host_port))
    b, _ = node.pod("b")
    node.serve(node.namespaces[0], container_port)
    # The pod answers with the client address it saw: always the bridge's, since every path is SNATed
    # (127.0.0.1 cannot be answered from a pod; hairpin and neighbour replies must return via the host).
    for netns, url in ((None, f"http://127.0.0.1:{host_port}/"), (None, f"http://{gateway(ip_a)}:{host_port}/"),
                       (node.namespaces[0], f"http://{gateway(ip_a)}:{host_port}/"),
                       (node.namespaces[1], f"http://{gateway(ip_a)}:{host_port}/")):
        got = probe(netns, "get", url)
        assert (got.returncode, got.stdout) == (0, gateway(ip_a)), f"{netns or 'host'} → {url}: {got.stderr}"
    rules = sh("nft", "list", "chain", "inet", node.bridge, "hostports").stdout
    assert f"dport {host_port} dnat ip to {ip_a}:{container_port}" in rules
    node.net.teardown(a)
    assert f"pod {a.pod_id}" not in sh("nft", "list", "table", "inet", node.bridge).stdout
    assert probe(None, "get", f"http://127.0.0.1:{host_port}/").returncode != 0


@pytest.mark.skipif(not Path("/proc/sys/net/ipv6").exists(), reason="IPv6 is off on this kernel")
def test_dual_stack(node: Node) -> None:
    node.net.update_pod_cidr(f"{node.net.pod_cidr},fd00:250:{secrets.randbelow(0xFFFF):x}::/64")
    a, (a4, a6) = node.pod("a")
    b, (b4, b6) = node.pod("b")
    assert ":" in a6 and ":" in b6
    assert probe(node.namespaces[0], "ping", b6).returncode == 0
    assert probe(node.namespaces[1], "ping", a4).returncode == 0
    assert probe(node.namespaces[0], "ping", a6.rsplit(":", 1)[0] + ":1").returncode == 0


def test_teardown_is_idempotent_and_frees_everything(node: Node) -> None:
    a, (ip_a,) = node.pod("a", PortMapping("UDP", 53, free_port()))
    veth = host_ifname(a.pod_id)
    assert sh("ip", "link", "show", veth, check=False).returncode == 0
    node.net.teardown(a)
    node.net.teardown(a)
    assert sh("ip", "link", "show", veth, check=False).returncode != 0
    assert "eth0" not in sh("ip", "netns", "exec", node.namespaces[0], "ip", "-o", "link").stdout
    assert json.loads((node.state / "leases.json").read_text())["leases"] == {}


def test_a_leftover_veth_of_the_same_pod_is_replaced(node: Node) -> None:
    """A crash between making the veth and recording the pod leaves the name taken."""
    ns = node.netns("again")
    pod = PodNetwork(pod_id=new_id(), name="again", namespace="test", uid=new_id()[:8],
                     netns_path=f"/run/netns/{ns}")
    stale_peer = node.netns("stale")
    node.net.status()  # the bridge
    sh("ip", "link", "add", host_ifname(pod.pod_id), "type", "veth", "peer", "name", "eth0", "netns", stale_peer)
    node.pods.append(pod)
    (ip,) = node.net.setup(pod)
    assert probe(ns, "ping", gateway(ip)).returncode == 0
    master = sh("ip", "-o", "link", "show", host_ifname(pod.pod_id)).stdout
    assert f"master {node.bridge}" in master and "state UP" in master
    assert "eth0" not in sh("ip", "netns", "exec", stale_peer, "ip", "-o", "link").stdout  # went with it


def test_the_agents_other_threads_stay_in_the_host_netns(node: Node) -> None:
    ns = node.netns("threads")
    own = os.readlink("/proc/thread-self/ns/net")
    pod_ns = os.stat(f"/run/netns/{ns}").st_ino
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, str] = {}

    def in_pod() -> None:
        seen["worker"] = os.readlink("/proc/thread-self/ns/net")
        inside.set()
        release.wait(10)

    runner = threading.Thread(target=run_in_netns, args=(f"/run/netns/{ns}", in_pod, LinuxSyscalls()))
    runner.start()
    assert inside.wait(10)
    seen["caller"] = os.readlink("/proc/thread-self/ns/net")
    seen["bystander"] = _netns_of_a_new_thread()
    release.set()
    runner.join()
    assert seen["worker"] == f"net:[{pod_ns}]"
    assert seen["caller"] == seen["bystander"] == own
    assert _netns_of_a_new_thread() == own


def _netns_of_a_new_thread() -> str:
    found: list[str] = []
    t = threading.Thread(target=lambda: found.append(os.readlink("/proc/thread-self/ns/net")))
    t.start()
    t.join()
    return found[0]


def test_a_link_of_another_kind_is_not_taken_for_the_bridge(node: Node) -> None:
    sh("ip", "link", "add", node.bridge, "type", "veth", "peer", "name", f"{node.bridge}p")
    try:
        with pytest.raises(FailedPrecondition, match="not a bridge"):
            NetlinkLinks().ensure_bridge(node.bridge, ["10.250.1.1/24"])
    finally:
        sh("ip", "link", "delete", node.bridge)


KILL_AFTER = {
    # SIGKILL the process running setup right after a stage, leaving that much behind.
    "veth": "links.attach",
    "rules": "nft.apply",
}
SETUP_AND_DIE = """
import os, signal, sys
from pathlib import Path
from runtime.network.bridge import BridgeNetwork
from runtime.network.links import NetlinkLinks
from runtime.network.nftables import NftCommand
from runtime.network.plugin import PodNetwork, PortMapping
from runtime.network.plugin_exec import SubprocessExec
state, cidr, bridge, pod_id, netns, stage = sys.argv[1:]

class DyingLinks(NetlinkLinks):
    def attach(self, a):
        super().attach(a)
        if stage == "links.attach":
            os.kill(os.getpid(), signal.SIGKILL)

class DyingNft(NftCommand):
    def apply(self, script, what):
        super().apply(script, what)
        if stage == "nft.apply" and "dnat ip to" in script:
            os.kill(os.getpid(), signal.SIGKILL)

net = BridgeNetwork(cidr, Path(state), bridge, links=DyingLinks(), nft=DyingNft(SubprocessExec()))
net.setup(PodNetwork(pod_id, "victim", "test", "uid", netns, (PortMapping("TCP", 80, 23456),)))
"""


@pytest.mark.parametrize("stage", sorted(KILL_AFTER))
def test_teardown_after_setup_was_killed_halfway(node: Node, stage: str) -> None:
    ns = node.netns("victim")
    pod = PodNetwork(pod_id=new_id(), name="victim", namespace="test", uid="uid",
                     netns_path=f"/run/netns/{ns}")
    args = [str(node.state), node.net.pod_cidr, node.bridge, pod.pod_id, pod.netns_path, KILL_AFTER[stage]]
    died = subprocess.run([sys.executable, "-c", SETUP_AND_DIE, *args],
                          cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=60)
    assert died.returncode == -signal.SIGKILL, died.stderr
    veth = host_ifname(pod.pod_id)
    assert sh("ip", "link", "show", veth, check=False).returncode == 0  # it did get halfway
    assert pod.pod_id in (node.state / "leases.json").read_text()
    fresh = BridgeNetwork(node.net.pod_cidr, node.state, node.bridge)  # as after an agent restart
    fresh.teardown(pod)
    assert sh("ip", "link", "show", veth, check=False).returncode != 0
    assert pod.pod_id not in (node.state / "leases.json").read_text()
    assert pod.pod_id not in sh("nft", "list", "table", "inet", node.bridge).stdout
