"""The HTTP seam of the registry client: one request, one response, no policy.

Redirects, auth and fallback are the client's decisions (registry.py); a transport only moves bytes,
raising OSError when it cannot connect or the connection breaks.
"""
from __future__ import annotations

import functools
import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Protocol

# A response body left unread up to this size is read off so its connection can be reused (an
# error page); a larger rest costs less to drop with its connection.
_DRAIN_LIMIT = 64 << 10
_IDLE_PER_HOST = 8  # a pull fetches a few blobs at a time; more idle connections would only wait


class Response(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # lower-case names

    def read(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                timeout: float) -> Response: ...


@functools.cache
def system_tls() -> ssl.SSLContext:
    """The system CAs, loaded once per process and only when a pull first needs TLS: loading them
    costs ~25 ms, as much as a whole small pull from a mirror on plain HTTP."""
    return ssl.create_default_context()


Key = tuple[str, str, int | None]  # scheme, host, port


class _HttpResponse:
    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 give_back: Callable[[http.client.HTTPConnection], None]) -> None:
        self._conn = conn
        self._resp = resp
        self._give_back = give_back
        self.status = resp.status
        headers: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            # WWW-Authenticate may repeat; the challenge parser splits on commas anyway.
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.headers = headers

    def read(self, n: int = -1) -> bytes:
        try:
            return self._resp.read(n if n >= 0 else None)
        except http.client.HTTPException as e:  # IncompleteRead and friends: a broken connection
            raise ConnectionError(f"reading the response failed: {e!r}") from e

    def close(self) -> None:
        """Gives the connection back for the next request when its response was read to the end
        (or nearly: a short rest is read off) and the server keeps it open; closes it otherwise."""
        resp, reusable = self._resp, False
        try:
            if not resp.isclosed() and resp.length is not None and resp.length <= _DRAIN_LIMIT:
                resp.read()
            reusable = resp.isclosed() and not resp.will_close
        except (OSError, http.client.HTTPException):
            pass
        finally:
            resp.close()
            if reusable:
                self._give_back(self._conn)
            else:
                self._conn.close()


class HttpTransport:
    """http.client with keep-alive: connections are kept per scheme, host and port and reused by
    the next request, so the requests of a pull (and of the next pulls) skip the TCP and TLS
    handshakes. Thread-safe: a connection serves one request at a time. TLS is verified with the
    system CAs unless ``tls`` says otherwise."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}

    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                timeout: float) -> Response:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ConnectionError(f"unsupported URL scheme in {url}")
        key: Key = (u.scheme, u.hostname or "", u.port)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn = self._take(key)
        if conn is not None:
            try:
                return self._send(key, conn, method, target, headers, body, timeout)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # The server closed the idle connection before it saw this request: nothing was
                # done, so it goes once more over a new one.
                pass
        try:
            return self._send(key, self._connect(key, timeout), method, target, headers, body, timeout)
        except http.client.HTTPException as e:
            raise ConnectionError(f"{method} {url}: {e!r}") from e

    def close(self) -> None:
        """Closes the idle connections (one in use closes when its response does)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _send(self, key: Key, conn: http.client.HTTPConnection, method: str, target: str,
              headers: Mapping[str, str], body: bytes | None, timeout: float) -> Response:
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request(method, target, body=body, headers=dict(headers))
            return _HttpResponse(conn, conn.getresponse(), functools.partial(self._give_back, key))
        except BaseException:
            conn.close()
            raise

    def _connect(self, key: Key, timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls or system_tls())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        with self._lock:
            conns = self._idle.get(key)
            return conns.pop() if conns else None

    def _give_back(self, key: Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(key, [])
            if len(conns) < _IDLE_PER_HOST:
                conns.append(conn)
                return
        conn.close()
