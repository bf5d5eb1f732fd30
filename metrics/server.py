"""The /metrics HTTP endpoint: a thread per scrape (prometheus_client's threading WSGI server), the
text format from the collector's fast printer, OpenMetrics (when the Accept header asks for it)
from prometheus_client, on registries of pycrid's own (never the global one)."""
from __future__ import annotations

import logging
import socket
import threading
from typing import cast
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer

from metrics.collector import ContainerCollector
from metrics.exposition import metrics_app
from metrics.process import SelfProcessCollector
from runtime.errors import InvalidArgument

log = logging.getLogger(__name__)


def parse_address(address: str) -> tuple[str, int]:
    """"127.0.0.1:9300", "[::1]:9300" or ":9300" (all addresses) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"metrics address {address!r}: expected HOST:PORT")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass  # a line per scrape would drown the agent's log


class MetricsServer:
    def __init__(self, address: str, collector: ContainerCollector, process: bool = True) -> None:
        self._host, self._port = parse_address(address)
        self._collector = collector
        self._process = CollectorRegistry(auto_describe=False)
        if process:
            self._process.register(SelfProcessCollector())  # process_cpu_seconds_total, _open_fds, ...
        self._full = CollectorRegistry(auto_describe=False)
        self._full.register(collector)
        if process:
            self._full.register(SelfProcessCollector())
        self._httpd: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def text(self) -> str:
        return self._collector.text() + generate_latest(self._process).decode()

    def start(self) -> tuple[str, int]:
        """Listens and serves on a daemon thread; returns the bound (host, port)."""

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in self._host else socket.AF_INET

        try:
            self._httpd = make_server(self._host, self._port, metrics_app(self.text, self._full), Server,
                                      handler_class=_Quiet)
        except OSError as e:
            raise InvalidArgument(f"metrics address {self._host}:{self._port}: cannot listen: {e}") from e
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        # An INET or INET6 socket's address: (host, port[, flowinfo, scope_id]).
        host, port = cast("tuple[str, int]", self._httpd.server_address[:2])
        log.info("serving metrics on http://%s:%d/metrics", host, port)
        return host, port

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
