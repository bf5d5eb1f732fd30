from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from runtime.errors import Internal, ResourceExhausted
from runtime.network.ipam import Lease, LeaseStore, LeaseTable, gateway_of, pick_address, plan_allocation

V4 = ipaddress.ip_network("10.250.0.0/29")  # .0 network, .1 gateway, .2-.6 pods, .7 broadcast
V6 = ipaddress.ip_network("fd00:250::/120")


def test_gateway_is_the_first_host() -> None:
    assert str(gateway_of(V4)) == "10.250.0.1"
    assert str(gateway_of(V6)) == "fd00:250::1"


@pytest.mark.parametrize(("taken", "after", "expected"), [
    ((), None, "10.250.0.2"),
    (("10.250.0.2",), None, "10.250.0.3"),
    ((), "10.250.0.3", "10.250.0.4"),  # walks on from the last one handed out
    (("10.250.0.2",), "10.250.0.6", "10.250.0.3"),  # wraps, skipping network and gateway
    ((), "192.168.0.9", "10.250.0.2"),  # a `last` from another range is ignored
])
def test_pick_address(taken: tuple[str, ...], after: str | None, expected: str) -> None:
    assert pick_address(V4, taken, after) == expected


def test_pick_address_never_hands_out_network_gateway_or_broadcast() -> None:
    seen = set()
    for _ in range(5):
        seen.add(pick_address(V4, seen, None))
    assert seen == {f"10.250.0.{i}" for i in range(2, 7)}
    with pytest.raises(ResourceExhausted, match="10.250.0.0/29"):
        pick_address(V4, seen, None)


@pytest.mark.parametrize("cidr", ["10.0.0.0/31", "10.0.0.0/32"])
def test_networks_without_room_for_pods_are_exhausted(cidr: str) -> None:
    with pytest.raises(ResourceExhausted):
        pick_address(ipaddress.ip_network(cidr), (), None)


def test_v6_uses_the_last_address_too() -> None:
    taken = {str(V6.network_address + i) for i in range(2, 255)}
    assert pick_address(V6, taken, None) == "fd00:250::ff"


def test_plan_allocation_gives_one_address_per_network_and_reuses_held_ones() -> None:
    table, addresses = plan_allocation(LeaseTable(), "pod-a", [V4, V6])
    assert [str(a) for a in addresses] == ["10.250.0.2/29", "fd00:250::2/120"]
    assert table.leases["10.250.0.2"] == Lease("pod-a", "10.250.0.0/29")
    again, same = plan_allocation(table, "pod-a", [V4, V6])
    assert same == addresses and again == table


def test_plan_allocation_is_pure() -> None:
    table = LeaseTable()
    plan_allocation(table, "pod-a", [V4])
    assert table == LeaseTable()


def test_store_persists_atomically_and_reloads(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    store.allocate("pod-a", [V4])
    store.allocate("pod-b", [V4])
    record = json.loads((tmp_path / "leases.json").read_text())
    assert record["version"] == 1
    assert record["leases"] == {"10.250.0.2": {"pod": "pod-a", "network": "10.250.0.0/29"},
                                "10.250.0.3": {"pod": "pod-b", "network": "10.250.0.0/29"}}
    assert not list(tmp_path.glob(".*.tmp"))
    reloaded = LeaseStore(tmp_path)
    assert [str(a) for a in reloaded.allocate("pod-c", [V4])] == ["10.250.0.4/29"]


def test_release_frees_and_is_idempotent(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    store.allocate("pod-a", [V4, V6])
    assert store.release("pod-a") == ("10.250.0.2", "fd00:250::2")
    assert store.release("pod-a") == ()
    assert LeaseStore(tmp_path).snapshot().leases == {}


def test_freed_addresses_are_not_reused_at_once(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    store.allocate("pod-a", [V4])
    store.release("pod-a")
    assert [str(a.ip) for a in store.allocate("pod-b", [V4])] == ["10.250.0.3"]


def test_exhaustion_leaves_the_table_unchanged(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    for i in range(5):
        store.allocate(f"pod-{i}", [V4])
    before = (tmp_path / "leases.json").read_bytes()
    with pytest.raises(ResourceExhausted):
        store.allocate("one-too-many", [V4])
    assert (tmp_path / "leases.json").read_bytes() == before


def test_reconcile_drops_leases_of_gone_pods(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    for pod in ("live", "gone-1", "gone-2"):
        store.allocate(pod, [V4])
    assert store.reconcile({"live"}) == ("gone-1", "gone-2")
    assert {lease.pod_id for lease in LeaseStore(tmp_path).snapshot().leases.values()} == {"live"}
    assert store.reconcile({"live"}) == ()


def test_a_new_cidr_applies_to_new_pods_only(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path)
    store.allocate("old", [V4])
    other = ipaddress.ip_network("10.251.0.0/24")
    assert [str(a) for a in store.allocate("new", [other])] == ["10.251.0.2/24"]
    assert store.snapshot().leases["10.250.0.2"] == Lease("old", "10.250.0.0/29")


def test_a_malformed_table_is_an_internal_error(tmp_path: Path) -> None:
    (tmp_path / "leases.json").write_text('{"version": 1, "leases": []}')
    with pytest.raises(Internal, match="leases.json"):
        LeaseStore(tmp_path).snapshot()


def test_a_lease_is_written_whole_but_not_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every RunPodSandbox writes the table under its lock: no fsync there (see LeaseStore._save),
    yet a new agent reads what the last one wrote."""
    synced: list[int] = []
    monkeypatch.setattr("os.fsync", lambda fd: synced.append(fd))
    store = LeaseStore(tmp_path)
    store.allocate("pod-a", [ipaddress.ip_network("10.88.0.0/24")])
    store.release("pod-a")
    store.allocate("pod-b", [ipaddress.ip_network("10.88.0.0/24")])
    assert synced == []
    assert {lease.pod_id for lease in LeaseStore(tmp_path).snapshot().leases.values()} == {"pod-b"}
    assert not list(tmp_path.glob(".*.tmp"))
