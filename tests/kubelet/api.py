"""A client for the kubelet's HTTPS server (its self-signed serving certificate is not verified:
the test kubelet listens on loopback only, with anonymous access allowed). An emulated guest's
kubelet answers /stats/summary in more than 10 s: its timeouts scale (tests/timescale.py)."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.timescale import TIMEOUT_SCALE


@dataclass(frozen=True)
class KubeletAPI:
    port: int
    host: str = "127.0.0.1"

    def get(self, path: str, timeout: float = 10.0 * TIMEOUT_SCALE) -> tuple[int, bytes]:
        """The status and body of GET ``path`` (an error status is returned, not raised)."""
        return self._request("GET", path, timeout)

    def post(self, path: str, timeout: float = 10.0 * TIMEOUT_SCALE) -> tuple[int, bytes]:
        return self._request("POST", path, timeout)

    def _request(self, method: str, path: str, timeout: float) -> tuple[int, bytes]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(f"https://{self.host}:{self.port}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def text(self, path: str) -> str:
        status, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body[:500]!r}"
        return body.decode()

    def json(self, path: str) -> dict[str, Any]:
        """A JSON object (every endpoint the tests read answers one)."""
        found = json.loads(self.text(path))
        assert isinstance(found, dict), f"GET {path}: not a JSON object: {found!r:.500}"
        return found


def healthz(port: int, timeout: float = 2.0) -> str | None:
    """The body of the kubelet's plain-HTTP /healthz, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as answer:
            return str(answer.read().decode())
    except (OSError, urllib.error.URLError):
        return None
