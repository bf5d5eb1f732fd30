"""The KubeletConfiguration of a test kubelet: standalone (no API server), serving on loopback
only with anonymous access (tests only), and touching nothing outside the dirs it is given."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KubeletSettings:
    runtime_endpoint: str      # unix:///... of the pycrid under test
    static_pod_dir: Path       # where the test writes pod manifests
    pod_logs_dir: Path
    volume_plugin_dir: Path    # the default is under /usr/libexec, which the kubelet creates
    cgroup_root: str           # "/pycrid-kubelet-xxxx": kubepods goes below it, not at the top
    port: int                  # HTTPS: /pods, /containerLogs, /stats, /exec, ...
    healthz_port: int
    cgroup_v1: bool
    feature_gates: dict[str, bool] = field(default_factory=dict)  # e.g. {"EventedPLEG": True}


def kubelet_configuration(s: KubeletSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": s.runtime_endpoint,
        "imageServiceEndpoint": s.runtime_endpoint,
        "staticPodPath": str(s.static_pod_dir),
        "fileCheckFrequency": "1s",  # a written or removed manifest is noticed within a second
        "podLogsDir": str(s.pod_logs_dir),
        "volumePluginDir": str(s.volume_plugin_dir),
        "address": "127.0.0.1",
        "port": s.port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": s.healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": s.cgroup_root,
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        # The KUBE-FIREWALL and KUBE-IPTABLES-HINT chains would be the host's, and stay.
        "makeIPTablesUtilChains": False,
        # Kept at its default (the kubelet sets the kernel tunables it wants): confinement.py
        # shadows them, so that it finds them set and changes nothing.
        "protectKernelDefaults": False,
    }
    if s.cgroup_v1:
        config["failCgroupV1"] = False  # v1.35+ refuses cgroup v1 unless told otherwise
    if s.feature_gates:
        config["featureGates"] = dict(s.feature_gates)
    return config
