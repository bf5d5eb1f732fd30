"""Starts a real `pycrid serve` for end-to-end tests, with its own config and state dirs."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket as sock
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import Unavailable
from runtime.process.client import ForkServer
from tests.timescale import TIMEOUT_SCALE

REPO = Path(__file__).resolve().parents[2]
MIRRORED_HOSTS = ("registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io")


@dataclass(frozen=True)
class Daemon:
    process: subprocess.Popen
    config_path: Path
    socket: Path
    root: Path
    state: Path
    log_path: Path
    bridge: str

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def stop(self, timeout: float = 10.0) -> int:
        """Stops pycrid serve; its fork server (and so its containers) keeps running, by design."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def tear_down(self) -> None:
        """After stop(): ends the fork server if it is still there (with no pod left it exits by
        itself) and removes the node-level network (bridge, nft table); for daemons that ran no
        containers (the others go through leaks.remove_everything)."""
        path = self.state / "forkserver.sock"
        with contextlib.suppress(Unavailable):
            ForkServer(str(path)).shutdown()
        remove_bridge(self.bridge)


def remove_bridge(bridge: str, timeout: float = 5.0) -> None:
    """The bridge and its table are node-level and stay by design; a test removes its own. Fails
    (in the test that made it) if the bridge outlives the timeout."""
    subprocess.run(["nft", "delete", "table", "inet", bridge], capture_output=True)
    deadline = time.monotonic() + timeout
    while True:
        deleted = subprocess.run(["ip", "link", "delete", bridge], capture_output=True, text=True)
        if subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0:
            return
        assert time.monotonic() < deadline, f"bridge {bridge} stays: {deleted.stderr.strip()}"
        time.sleep(0.1)


# Every bridge a daemon of this test session was given (pyce2e…, pycni…), with the test that gave it:
# the session's end checks that these are gone. Other developers' sessions run beside ours with
# bridges of their own.
SESSION_BRIDGES: dict[str, str] = {}


def write_config(base: Path, registry: str | None, bridge: str, insecure: tuple[str, ...] = (),
                 metrics_address: str = "", network: dict[str, str] | None = None,
                 settings: dict[str, str] | None = None) -> Path:
    """A config that keeps everything under `base`, uses a pod network of its own (so it never
    meets a real pycrid's), and mirrors the public hosts to `registry`; metrics off unless an
    address is given. `network` replaces keys of the [network] table, `settings` adds top-level
    keys."""
    SESSION_BRIDGES[bridge] = os.environ.get("PYTEST_CURRENT_TEST", "?")
    n = int(bridge[-4:], 16)
    net = {"mode": "bridge", "bridge": bridge, "pod_cidr": f"10.{200 + n // 256 % 32}.{n % 256}.0/24",
           **(network or {})}
    lines = [f'listen = "unix://{base}/run/pycrid.sock"', f'root = "{base}/root"',
             f'state = "{base}/run"', 'log_level = "debug"', 'shutdown_grace_seconds = 3.0',
             *(f"{k} = {json.dumps(v)}" for k, v in (settings or {}).items()),
             '[network]', *(f"{k} = {json.dumps(v)}" for k, v in net.items()),
             '[metrics]', f'address = "{metrics_address}"']
    if registry:
        for host in MIRRORED_HOSTS:
            lines += [f'[registries."{host}"]', f'mirrors = ["http://{registry}"]']
        insecure = (registry, *insecure)
    for host in insecure:
        lines += [f'[registries."{host}"]', "insecure = true"]
    path = base / "pycrid.toml"
    path.write_text("\n".join(lines) + "\n")
    return path




def start(base: Path, registry: str | None = None, timeout: float = 20.0 * TIMEOUT_SCALE,
          insecure: tuple[str, ...] = (), metrics_address: str = "",
          network: dict[str, str] | None = None, settings: dict[str, str] | None = None,
          source: Path = REPO) -> Daemon:
    """launch(), then wait until pycrid answers on its socket."""
    daemon = launch(base, registry, insecure, metrics_address, network, settings, source)
    deadline = time.monotonic() + timeout
    while not _answers(daemon.socket):
        if daemon.process.poll() is not None or time.monotonic() > deadline:
            daemon.stop()
            raise RuntimeError(f"pycrid did not start; log:\n{daemon.log_path.read_text()[-4000:]}")
        time.sleep(0.05)
    return daemon


def launch(base: Path, registry: str | None = None, insecure: tuple[str, ...] = (), metrics_address: str = "",
           network: dict[str, str] | None = None, settings: dict[str, str] | None = None,
           source: Path = REPO) -> Daemon:
    """Starts pycrid on the config under `base`, written on the first start and reused after,
    so a restart is a restart (same bridge, same dirs); ``source`` is the checkout whose code runs.
    Returns at once, before it serves."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "pycrid.toml"
    if not config.exists():
        write_config(base, registry, unused_bridge_name(), insecure, metrics_address, network, settings)
    bridge = tomllib.loads(config.read_text())["network"]["bridge"]
    log_path = base / "pycrid.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "cri", "serve", "--config", str(config)],
                                   cwd=source, stdout=log, stderr=log, start_new_session=True)
    return Daemon(process, config, base / "run" / "pycrid.sock", base / "root", base / "run", log_path, bridge)


def unused_bridge_name() -> str:
    """pyce2e + 4 hex digits (it also picks the pod subnet), not the name of any existing link:
    test daemons run side by side and must never share a bridge."""
    while True:
        name = f"pyce2e{secrets.token_hex(2)}"
        if subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0:
            return name


def _answers(path: Path) -> bool:
    """True once something accepts connections on the socket (a stale file does not count)."""
    with sock.socket(sock.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


class CrictlFailed(subprocess.CalledProcessError):
    """A failed crictl command whose message carries what crictl said (pycrid's error)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\ncrictl said: {(self.stderr or '').strip()}"


def crictl(daemon: Daemon, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=daemon.endpoint, IMAGE_SERVICE_ENDPOINT=daemon.endpoint)
    argv = ["crictl", "--timeout", "60s", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise CrictlFailed(done.returncode, argv, done.stdout, done.stderr)
    return done
