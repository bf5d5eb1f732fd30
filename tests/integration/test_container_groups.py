"""SupplementalGroupsPolicy in a real container: what `id -G` sees under Merge and under Strict.

The host-tools rootfs (hostroot.py) has guest (uid and gid 1234) in group extra (5000) in its
/etc/group; the CRI adds group 777."""
from __future__ import annotations

import pytest

from runtime.process.initspec import User
from tests.integration.podharness import log_lines, wait_exit


@pytest.mark.parametrize("image_groups, want", [
    (True, {1234, 777, 5000}),  # Merge: the image's membership joins the CRI's group
    (False, {1234, 777}),  # Strict: only the primary gid and the CRI's group
])
def test_id_sees_the_policys_groups(pod, image_groups: bool, want: set[int]) -> None:
    spec = pod.spec("c1", ("id", "-G"), user=User(uid=1234, additional_gids=(777,), image_groups=image_groups))
    pod.start(spec)
    assert wait_exit(spec)["exit_code"] == 0
    (line,) = log_lines(spec)
    assert {int(g) for g in line[2].split()} == want
