from __future__ import annotations

import gzip
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from metrics.collector import ContainerCollector
from metrics.exposition import metrics_app, text_accepted
from metrics.own import OwnMetrics
from metrics.server import MetricsServer, parse_address
from runtime.errors import InvalidArgument
from tests.unit.stats.builders import Records, reader, scene


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:9300", ("127.0.0.1", 9300)), ("[::1]:0", ("::1", 0)), (":9300", ("0.0.0.0", 9300)),
])
def test_parse_address(address: str, expected: tuple) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9300", "host:", "host:http", "h:70000"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_address(address)


@pytest.fixture
def server():  # noqa: ANN201
    sandboxes, containers = scene("v2")
    collector = ContainerCollector(Records(sandboxes), Records(containers), reader("v2"), OwnMetrics())
    s = MetricsServer("127.0.0.1:0", collector)
    host, port = s.start()
    yield f"http://{host}:{port}/metrics"
    s.stop()


def get(url: str, accept: str = "") -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def test_serves_the_text_format(server: str) -> None:
    content_type, body = get(server)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "container_memory_working_set_bytes{" in body
    assert "pycrid_build_info{" in body and "process_resident_memory_bytes" in body


def test_serves_openmetrics_when_asked(server: str) -> None:
    content_type, body = get(server, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    assert "# TYPE container_cpu_usage_seconds counter" in body
    assert "# TYPE container_memory_failcnt unknown" in body


# What Prometheus 3 sends: OpenMetrics first, the text formats after, anything last.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,"
                     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")


def test_a_client_that_takes_text_gets_text_even_preferring_openmetrics(server: str) -> None:
    content_type, body = get(server, PROMETHEUS_ACCEPT)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "container_memory_working_set_bytes{" in body and "# EOF" not in body


@pytest.mark.parametrize(("accept", "text"), [
    ("", True), (PROMETHEUS_ACCEPT, True), ("*/*", True), ("text/*;q=0.2", True), ("text/plain; q=0.5", True),
    ("application/openmetrics-text; version=1.0.0", False), ("text/plain;q=0, application/openmetrics-text", False),
    ("*/*;q=0.0,application/openmetrics-text", False), ("application/json", False),
])
def test_text_accepted(accept: str, text: bool) -> None:
    assert text_accepted(accept) is text


def test_a_busy_port_is_a_clear_error(server: str) -> None:
    port = server.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(InvalidArgument, match="cannot listen"):
        MetricsServer(f"127.0.0.1:{port}", ContainerCollector(Records([]), Records([]), reader("v1"))).start()


def test_plain_on_loopback_even_when_gzip_is_accepted(server: str) -> None:
    request = urllib.request.Request(server, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] is None
        assert b"container_last_seen{" in response.read()


@pytest.mark.parametrize("remote, gzipped", [("192.0.2.7", True), ("::ffff:192.0.2.7", True),
                                             ("2001:db8::1", True), ("127.0.0.1", False), ("::1", False),
                                             ("::ffff:127.0.0.1", False)])
def test_gzip_for_remote_clients_that_accept_it(remote: str, gzipped: bool) -> None:
    app = metrics_app(lambda: "container_last_seen{} 1.0\n", CollectorRegistry(auto_describe=False))
    answers: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "REMOTE_ADDR": remote,
                         "HTTP_ACCEPT_ENCODING": "gzip"}, lambda status, headers: answers.append((status, headers))))
    status, headers = answers[0]
    assert status == "200 OK"
    assert (("Content-Encoding", "gzip") in headers) is gzipped
    assert (gzip.decompress(body) if gzipped else body) == b"container_last_seen{} 1.0\n"


def test_name_filters_and_other_methods(server: str) -> None:
    _, body = get(server + "?name[]=container_memory_rss")
    assert body.startswith("# HELP container_memory_rss ") and "container_last_seen" not in body
    request = urllib.request.Request(server, method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 405
