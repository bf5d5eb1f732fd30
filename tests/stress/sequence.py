"""A worker's seeded random sequence of calls: a weighted mix of valid and hostile calls, plus the
follow-ups successful calls ask for (StartContainer after CreateContainer).

The i-th call a worker draws (follow-ups are not drawn) takes its random choices (which kind of
call, which hostile value, which command) from its own RNG, seeded with (seed, worker, i): what
one draw consumed never shifts the next, so under one seed the i-th draw of worker w is made the
same way on every run. What it lands on is not reproducible: the objects that exist, which calls
succeed (and so which follow-ups come) and all timing depend on the scheduler and on the chaos.
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.stress import configs
from tests.stress.call import Call
from tests.stress.hostile_calls import HostileCalls
from tests.stress.valid_calls import ValidCalls
from tests.stress.world import World

HOSTILE_SHARE = 0.3  # of the drawn calls


def _mix(valid: ValidCalls, hostile: HostileCalls, world: World
         ) -> tuple[list[Callable[[], Call | None]], list[float], list[Callable[[], Call | None]], list[float]]:
    def run_or_remove() -> Call | None:
        return valid.remove_pod() if world.full() else valid.run_pod()
    good = [(run_or_remove, 6), (valid.stop_pod, 1.5), (valid.remove_pod, 2.5),
            (valid.create_container, 9), (valid.start_any, 1), (valid.stop_container, 3),
            (valid.remove_container, 3), (valid.exec_sync, 6), (valid.container_status, 4),
            (valid.pod_status, 3), (valid.listing, 3), (valid.update_resources, 2), (valid.reopen_log, 2),
            (valid.stats, 4), (valid.node, 2), (valid.image, 1.5), (valid.on_removed, 2)]
    bad = [(hostile.bad_id, 5), (hostile.run_pod, 3), (hostile.create_container, 4), (hostile.exec_sync, 1.5),
           (hostile.update_resources, 1), (hostile.image, 2), (hostile.listing, 1), (hostile.on_exited, 1.5)]
    return [f for f, _ in good], [w for _, w in good], [f for f, _ in bad], [w for _, w in bad]


class Sequence:
    def __init__(self, seed: int, worker: int, world: World, ctx: configs.Context,
                 hostile_share: float = HOSTILE_SHARE) -> None:
        self.seed, self.worker, self.hostile_share = seed, worker, hostile_share
        self.drawn = 0
        self._valid = ValidCalls(world, ctx, random.Random(), worker)
        self._hostile = HostileCalls(world, ctx, random.Random(), self._valid)
        self._good, self._good_w, self._bad, self._bad_w = _mix(self._valid, self._hostile, world)
        self._follow_ups: deque[Call] = deque()

    def next(self) -> Call:
        if self._follow_ups:
            return self._follow_ups.popleft()
        rng = random.Random(f"{self.seed}:{self.worker}:{self.drawn}")
        self.drawn += 1
        self._valid.rng = self._hostile.rng = rng
        while True:
            hostile = rng.random() < self.hostile_share
            make = rng.choices(*((self._bad, self._bad_w) if hostile else (self._good, self._good_w)))[0]
            call = make()
            if call is not None:
                return call

    def answered(self, call: Call, response: Any) -> None:
        """After an OK: let the call record what it made, and queue what it asks for next."""
        if call.after is not None:
            follow_up = call.after(response)
            if follow_up is not None:
                self._follow_ups.append(follow_up)
