"""HttpTransport against a real HTTP/1.1 server on loopback: connections are reused, an idle
connection the server closed is replaced without failing the request, and TLS is only set up
when a request needs it."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from runtime.image import transport as tp
from runtime.image.transport import HttpTransport


@dataclass
class Served:
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    close_after_each: bool = False  # the server drops every connection once it answered


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def setup(self) -> None:
        super().setup()
        self.served.connections += 1

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.served.paths.append(self.path)
        status, body = (404, b"not here" * 10) if self.path == "/missing" else (200, self.path.encode() * 1000)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.served.close_after_each:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def get(t: HttpTransport, url: str) -> tuple[int, bytes]:
    resp = t.request("GET", url, {}, None, 5.0)
    try:
        return resp.status, resp.read()
    finally:
        resp.close()


def test_requests_reuse_one_connection(server) -> None:
    base, served = server
    t = HttpTransport()
    for i in range(5):
        assert get(t, f"{base}/blob{i}") == (200, f"/blob{i}".encode() * 1000)
    assert get(t, f"{base}/missing")[0] == 404  # an error page read off keeps the connection too
    assert get(t, f"{base}/after")[0] == 200
    assert served.connections == 1
    t.close()


def test_a_response_read_in_chunks_to_its_end_gives_its_connection_back(server) -> None:
    base, served = server
    t = HttpTransport()
    for _ in range(3):
        resp = t.request("GET", f"{base}/chunked", {}, None, 5.0)
        while resp.read(1000):
            pass
        resp.close()
    assert served.connections == 1


def test_a_response_closed_unread_drops_a_large_rest_with_its_connection(server, monkeypatch) -> None:
    base, served = server
    monkeypatch.setattr(tp, "_DRAIN_LIMIT", 100)
    t = HttpTransport()
    t.request("GET", f"{base}/big", {}, None, 5.0).close()
    assert get(t, f"{base}/next") == (200, b"/next" * 1000)
    assert served.connections == 2


def test_a_connection_the_server_closed_is_replaced(server) -> None:
    base, served = server
    served.close_after_each = True
    t = HttpTransport()
    for i in range(3):
        assert get(t, f"{base}/p{i}") == (200, f"/p{i}".encode() * 1000)
    assert served.paths == ["/p0", "/p1", "/p2"]
    assert served.connections == 3


def test_parallel_requests_get_connections_of_their_own(server) -> None:
    base, served = server
    t = HttpTransport()
    first = t.request("GET", f"{base}/a", {}, None, 5.0)
    second = t.request("GET", f"{base}/b", {}, None, 5.0)  # the first is not read yet
    assert (second.read(), first.read()) == (b"/b" * 1000, b"/a" * 1000)
    first.close()
    second.close()
    assert get(t, f"{base}/c")[0] == 200
    assert served.connections == 2


def test_plain_http_never_loads_the_system_cas(server, monkeypatch) -> None:
    base, _ = server
    tp.system_tls.cache_clear()
    loads: list[int] = []
    monkeypatch.setattr(tp.ssl, "create_default_context", lambda: loads.append(1))
    assert get(HttpTransport(), f"{base}/x")[0] == 200
    assert loads == []
    tp.system_tls.cache_clear()


def test_an_unsupported_scheme_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError, match="unsupported URL scheme"):
        HttpTransport().request("GET", "ftp://example/x", {}, None, 1.0)
