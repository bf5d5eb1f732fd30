"""read_image_file on device nodes an image can carry: making them needs root."""
import os
import stat

import pytest

from runtime.errors import InvalidArgument
from runtime.linux.imagefile import read_image_file
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.testing import run_in_child

pytestmark = pytest.mark.root


@pytest.mark.parametrize("device, message", [
    (os.makedev(1, 5), "is a character device, not a regular file"),  # /dev/zero: a plain read never ends
    (os.makedev(1, 3), "is a character device, not a regular file"),  # /dev/null
    (os.makedev(0, 0), "cannot be read: .*No such device"),  # no driver: the open itself fails
])
def test_a_device_node_in_the_image_is_refused(tmp_path, device, message):
    (tmp_path / "etc").mkdir()
    os.mknod(tmp_path / "etc" / "passwd", stat.S_IFCHR | 0o644, device)
    with pytest.raises(InvalidArgument, match=f"/etc/passwd in the container {message}"):
        run_in_child(lambda: read_image_file(LinuxSyscalls(), str(tmp_path), "/etc/passwd", 1 << 20), timeout=5)
