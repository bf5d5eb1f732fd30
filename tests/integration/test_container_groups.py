"""SupplementalGroupsPolicy in a real container: what `id -G` sees under Merge and under Strict,
and the user its init reports for ContainerStatus.user.

The host-tools rootfs (hostroot.py) has guest (uid and gid 1234) in group extra (5000) in its
/etc/group; the CRI adds group 777."""
from __future__ import annotations

import pytest

from runtime.container.users import InitialUser
from runtime.process.initspec import User
from tests.integration.podharness import log_lines, wait_exit


@pytest.mark.parametrize("image_groups, want", [
    (True, {1234, 777, 5000}),  # Merge: the image's membership joins the CRI's group
    (False, {1234, 777}),  # Strict: only the primary gid and the CRI's group
])
def test_id_sees_the_policys_groups(pod, image_groups: bool, want: set[int]) -> None:
    spec = pod.spec("c1", ("id", "-G"), user=User(uid=1234, additional_gids=(777,), image_groups=image_groups))
    started = pod.monitor.start(spec, 30)
    assert wait_exit(spec)["exit_code"] == 0
    (line,) = log_lines(spec)
    assert {int(g) for g in line[2].split()} == want
    assert started.user is not None
    assert (started.user.uid, started.user.gid, set(started.user.groups)) == (1234, 1234, want)


def test_the_reported_user_is_the_one_resolved_in_the_rootfs(pod) -> None:
    spec = pod.spec("c1", ("true",), user=User(username="guest"))
    assert pod.monitor.start(spec, 30).user == InitialUser(1234, 1234, (1234, 5000))
    assert wait_exit(spec)["exit_code"] == 0
