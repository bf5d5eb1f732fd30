"""Trying a new container's image volumes at CreateContainer, in a fork-server child.

Whether an image_sub_path names a directory of the image depends on its layers merged (whiteouts,
opaque directories, symlinks across layers): only the kernel's overlay knows. So a short-lived
child of the fork server mounts each image volume exactly as the container's init will at start
(runtime/linux/imagetree.py), in a mount namespace of its own that ends with it, and reports. A
missing or non-directory sub path then fails CreateContainer, as with containerd, instead of the
start. (The agent cannot do it itself: it is multi-threaded, and a mount namespace is per thread.)
"""
from __future__ import annotations

import os
import socket
from typing import Any

from runtime.errors import PycridError
from runtime.linux import constants as k
from runtime.linux.imagetree import ImageTree, mount_image_tree
from runtime.linux.rootfs import closing_fd, open_in_root, opened_root
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import protocol
from runtime.process.client import ForkServer, wait_report

CHECK_TIMEOUT = 30.0  # seconds: an overlay mount and a path walk


def check_image_mount(raw: dict[str, Any], fds: list[int]) -> int:
    """Fork-server target: mounts the image tree ``raw`` describes on directory ``raw["target"]``
    of ``raw["root"]`` in a new mount namespace; reports {"ok": {}} or the error and its class."""
    with socket.socket(fileno=fds[0]) as report:
        try:
            syscalls = LinuxSyscalls()
            syscalls.unshare(k.CLONE_NEWNS)
            syscalls.mount(None, "/", None, k.MS_REC | k.MS_SLAVE)  # nothing we mount reaches the host
            tree = ImageTree(tuple(raw["layers"]), raw["empty"], raw["sub_path"])
            with opened_root(raw["root"]) as root_fd:
                with closing_fd(open_in_root(syscalls, root_fd, raw["target"], os.O_PATH | os.O_DIRECTORY)) as target:
                    mount_image_tree(syscalls, root_fd, target, tree, raw["what"])
        except PycridError as e:
            protocol.send(report, {"error": str(e), "error_class": type(e).__name__})
            return 1
        except Exception as e:  # noqa: BLE001 - the agent gets it as an Internal error
            protocol.send(report, {"error": f"{type(e).__name__}: {e}"})
            return 1
        protocol.send(report, {"ok": {}})
    return 0


class ForkedImageMountCheck:
    """Checks an image volume by mounting it in a fork-server child (see the module's doc)."""

    def __init__(self, forkserver: ForkServer) -> None:
        self._forkserver = forkserver

    def __call__(self, tree: ImageTree, root: str, target: str, who: str, what: str) -> None:
        """Raises what mounting ``tree`` on ``target``, a directory in ``root``, raised, its message
        prefixed with ``who`` (the container) and ``what`` (the volume)."""
        pid, report = self._forkserver.launch("check_image_mount", {
            "layers": list(tree.layers), "empty": tree.empty, "sub_path": tree.sub_path, "root": root,
            "target": target, "what": what})
        with report:
            wait_report(report, who, pid, CHECK_TIMEOUT)
