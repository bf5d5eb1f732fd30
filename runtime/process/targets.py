"""What the fork server can run, by name: each a function(spec, fds) -> exit code of the child.

Imported by the fork server before gc.freeze(), so every child shares this code's pages; the pod
monitor imports what it forks itself (init, a restore's starter, exec, pause), so that is shared too.
"""

TARGETS: dict[str, str] = {
    "monitor": "runtime.process.podmonitor:run_monitor",
    "unpack_layer": "runtime.process.unpacker:unpack_layer",
    "idmap_probe": "runtime.process.idmapprobe:run_probe",
    "check_image_mount": "runtime.process.imagecheck:check_image_mount",
}
