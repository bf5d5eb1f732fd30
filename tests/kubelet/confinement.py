"""Runs the kubelet in a mount namespace of its own, so that what it would change machine-wide
lands in the test's directory instead, and shares its root dir with the test's (and pycrid's)
namespace, so the volume mounts it makes there are seen by pycrid as on a real node.

What the kubelet v1.36 changes outside its configured dirs, and where it goes instead:
- kernel tunables (vm.overcommit_memory=1, kernel.panic_on_oops=1, ...: setupKernelTunables,
  which either sets them or, with protectKernelDefaults, refuses to start): each is shadowed by a
  file holding the value the kubelet wants, so it finds nothing to change;
- /var/lib/kubelet/device-plugins (a fixed path, emptied at each start, so two kubelets on one
  machine would remove each other's socket) and /var/log/containers (symlinks to pod logs): /var/lib
  and /var/log are overlaid with upper dirs under the test's directory.
"""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from runtime.linux import proc

# pkg/util/sysctl: the values setupKernelTunables (pkg/kubelet/cm/container_manager_linux.go) wants.
KUBELET_TUNABLES = {"vm/overcommit_memory": 1, "vm/panic_on_oom": 0, "kernel/panic": 10,
                    "kernel/panic_on_oops": 1, "kernel/keys/root_maxkeys": 1000000,
                    "kernel/keys/root_maxbytes": 25000000}
OVERLAID = ("/var/lib", "/var/log")


def confined_command(argv: list[str], base: Path) -> list[str]:
    """``argv`` run in a new mount namespace set up as the module says, with state under ``base``.
    The namespace starts as a copy of the caller's: shared mounts (the kubelet root dir made
    shared by share_dir) stay peers of the caller's, everything else is private to it."""
    steps = [
        # The copies of other runtimes' pinned namespaces (nsfs bind mounts) would keep those
        # namespaces alive for as long as the kubelet runs; it needs none of them. Where one sits in
        # a shared mount (/run/netns, once `ip netns add` ran), its unmount would propagate to the
        # machine's namespace and unpin it there too: that mount is made a slave here first.
        'findmnt -rn -t nsfs -o TARGET | while read -r m; do '
        'mount --make-slave "$(findmnt -n -o TARGET --target "$(dirname "$m")")" 2>/dev/null || true; '
        'umount -l "$m" 2>/dev/null || true; done',
    ]
    shadows = base / "sysctl"
    shadows.mkdir(parents=True, exist_ok=True)
    for key, value in KUBELET_TUNABLES.items():
        shadow = shadows / key.replace("/", ".")
        shadow.write_text(f"{value}\n")
        steps.append(f"mount --bind {shlex.quote(str(shadow))} /proc/sys/{key}")
    for lower in OVERLAID:
        layer = base / "overlay" / lower.strip("/").replace("/", "-")
        (layer / "upper").mkdir(parents=True, exist_ok=True)
        (layer / "work").mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={lower},upperdir={layer / 'upper'},workdir={layer / 'work'}"
        steps.append(f"mount -t overlay overlay -o {shlex.quote(options)} {lower}")
    script = "set -e\n" + "\n".join(steps) + '\nexec "$@"\n'
    return ["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c", script, "sh", *argv]


def share_dir(path: Path) -> None:
    """Makes ``path`` a shared mount (a bind mount onto itself), so that mounts made below it in a
    namespace copied from this one appear here too, as the kubelet's volume mounts must."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)


def unmount_tree(path: Path) -> None:
    """Unmounts ``path`` and everything mounted below it (what the kubelet left, then the shared
    bind itself); nothing there is fine."""
    if any(m == str(path) or m.startswith(f"{path}/") for m in proc.mount_points()):
        subprocess.run(["umount", "--recursive", str(path)], check=True)
