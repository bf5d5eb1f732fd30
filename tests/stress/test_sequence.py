"""Seeded call sequences: no root, no pycrid (nothing is called, only drawn)."""
from __future__ import annotations

from pathlib import Path

from cri.api.v1 import api_pb2 as pb
from tests.stress.call import brief
from tests.stress.configs import Context
from tests.stress.sequence import Sequence
from tests.stress.world import World


def draws(tmp_path: Path, seed: int, n: int = 60, answer_creates: bool = False) -> list[str]:
    world = World(max_pods=4, max_containers_per_pod=2)
    sequence = Sequence(seed, 0, world, Context(tmp_path / "logs", "127.0.0.1:5000", ("vm.swappiness", "60")))
    drawn: list[str] = []
    while len(drawn) < n:
        call = sequence.next()
        if call.method == "StartContainer" and answer_creates:
            continue  # a follow-up, not a draw
        drawn.append(f"{call.method} {brief(call.request, 120)}")
        if answer_creates and call.method == "CreateContainer":
            sequence.answered(call, pb.CreateContainerResponse(container_id="c" * 64))
    return drawn


def test_a_seed_draws_the_same_calls_and_another_seed_others(tmp_path: Path) -> None:
    first = draws(tmp_path, 1)
    assert first == draws(tmp_path, 1)
    assert first != draws(tmp_path, 2)
    assert len({d.split()[0] for d in first}) > 5, first  # a mix, not one method


def test_follow_ups_do_not_shift_the_draws_after_them(tmp_path: Path) -> None:
    # No pod exists in either world (nothing answers RunPodSandbox), so creates land on made-up pods.
    assert draws(tmp_path, 3, answer_creates=True) == draws(tmp_path, 3)
