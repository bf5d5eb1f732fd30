"""Is a component up yet: HTTP health endpoints (from inside the cluster's namespace) and a wait
that names the component and shows its log when it never comes up."""
from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.cluster import daemons
from tests.cluster.layout import Layout


def tls_context(ca: Path | None = None, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """Verifies against ``ca`` (or nothing: the components' self-signed health endpoints), and
    presents a client certificate when given one."""
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


def http_get(url: str, context: ssl.SSLContext | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """The status and body (0 and the error when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e).encode()


def answers_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    return http_get(url, context)[0] == 200


def unix_socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def wait_until(layout: Layout, component: str, probe: Callable[[], bool], timeout: float) -> None:
    """Polls ``probe`` until it is true; fails with the component's log tail if the component died
    or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while not probe():
        died = daemons.pid_of(layout, component) is None and layout.pidfile(component).exists()
        if died or time.monotonic() > deadline:
            state = "exited" if died else f"is not up after {timeout:.0f} s"
            raise RuntimeError(f"{component} {state}; {layout.log(component)} ends:\n"
                               f"{daemons.log_tail(layout, component)}")
        time.sleep(0.2)
