"""The pure parts of the standalone-kubelet harness (tests/kubelet): the cgroup hierarchies it
makes its root in, its KubeletConfiguration, and the confinement command."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.kubelet.confinement import KUBELET_TUNABLES, confined_command
from tests.kubelet.kubelet_config import KubeletSettings, kubelet_configuration
from tests.kubelet.node_cgroups import hierarchies

MOUNTINFO = """\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 25 0:29 / /tmp/ctr/rootfs/sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
"""


def test_hierarchies_are_the_cgroup_mounts_under_sys_fs_cgroup() -> None:
    assert hierarchies(MOUNTINFO) == ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified")


def settings(cgroup_v1: bool) -> KubeletSettings:
    return KubeletSettings(runtime_endpoint="unix:///t/pycrid.sock", static_pod_dir=Path("/t/manifests"),
                           pod_logs_dir=Path("/t/logs"), volume_plugin_dir=Path("/t/plugins"),
                           cgroup_root="/pycrid-kubelet-abc", port=10250, healthz_port=10248, cgroup_v1=cgroup_v1)


def test_the_configuration_is_standalone_loopback_and_confined_to_its_dirs() -> None:
    config = kubelet_configuration(settings(cgroup_v1=True))
    assert (config["address"], config["healthzBindAddress"], config["readOnlyPort"]) == ("127.0.0.1", "127.0.0.1", 0)
    assert config["containerRuntimeEndpoint"] == config["imageServiceEndpoint"] == "unix:///t/pycrid.sock"
    assert (config["staticPodPath"], config["podLogsDir"], config["volumePluginDir"]) == (
        "/t/manifests", "/t/logs", "/t/plugins")
    assert (config["cgroupDriver"], config["cgroupRoot"]) == ("cgroupfs", "/pycrid-kubelet-abc")
    assert config["makeIPTablesUtilChains"] is False and config["failCgroupV1"] is False
    assert "failCgroupV1" not in kubelet_configuration(settings(cgroup_v1=False))


def test_feature_gates_are_set_only_when_asked_for() -> None:
    assert "featureGates" not in kubelet_configuration(settings(cgroup_v1=True))
    gated = replace(settings(cgroup_v1=True), feature_gates={"EventedPLEG": True})
    assert kubelet_configuration(gated)["featureGates"] == {"EventedPLEG": True}


def test_the_confined_command_shadows_the_tunables_and_overlays_var(tmp_path: Path) -> None:
    argv = confined_command(["/bin/kubelet", "--v=2"], tmp_path)
    assert argv[:5] == ["unshare", "--mount", "--propagation", "unchanged", "--"]
    script = argv[7]
    assert argv[-3:] == ["sh", "/bin/kubelet", "--v=2"] and script.rstrip().endswith('exec "$@"')
    for key, value in KUBELET_TUNABLES.items():
        shadow = tmp_path / "sysctl" / key.replace("/", ".")
        assert shadow.read_text() == f"{value}\n"
        assert f"mount --bind {shadow} /proc/sys/{key}" in script
    for lower, layer in (("/var/lib", "var-lib"), ("/var/log", "var-log")):
        assert (f"lowerdir={lower},upperdir={tmp_path}/overlay/{layer}/upper,"
                f"workdir={tmp_path}/overlay/{layer}/work {lower}") in script
