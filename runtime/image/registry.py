"""OCI distribution client for one repository: manifests and blobs, with mirrors, auth and redirects.

Every request tries the mirrors in order and then the upstream host, falling through on
connection errors, 404s and 5xx (as containerd does per request). Redirects (blob storage) are
followed; the Authorization header never follows a redirect to another host.
"""
from __future__ import annotations

import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass

from runtime.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    PycridError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from runtime.image.auth import Authorizer, Credentials
from runtime.image.digest import sha256_digest
from runtime.image.hosts import Endpoint, RegistryHost, endpoints
from runtime.image.manifest import ACCEPT, MAX_DOCUMENT, Descriptor
from runtime.image.reference import Reference
from runtime.image.transport import Response, Transport

_CHUNK = 1 << 20
_MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchedManifest:
    media_type: str  # the Content-Type header; the body's mediaType field takes precedence
    body: bytes
    digest: str


class RegistryClient:
    def __init__(self, ref: Reference, hosts: Mapping[str, RegistryHost], transport: Transport,
                 credentials: Credentials | None, timeout: float) -> None:
        self._ref = ref
        self._what = f'image "{ref.full}"'
        self._endpoints = endpoints(ref.domain, hosts)
        self._transport = transport
        self._timeout = timeout
        self._auth = Authorizer(transport, credentials, f"repository:{ref.path}:pull", timeout, self._what)

    def manifest(self, obj: str) -> FetchedManifest:
        """The manifest or index named by a tag or digest; a digest is verified against the bytes."""
        resp, where = self._get(f"manifests/{obj}", {"Accept": ACCEPT}, "manifest")
        try:
            length = resp.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_DOCUMENT:
                raise ResourceExhausted(f"{self._what}: manifest {obj} at {where} is {length} bytes, "
                                        f"more than the {MAX_DOCUMENT} allowed")
            body = self._read(resp, MAX_DOCUMENT + 1, where)
        finally:
            resp.close()
        if len(body) > MAX_DOCUMENT:
            raise ResourceExhausted(f"{self._what}: manifest {obj} at {where} is larger than {MAX_DOCUMENT} bytes")
        digest = sha256_digest(body)
        if obj.startswith("sha256:") and digest != obj:
            raise InvalidArgument(f"{self._what}: manifest {obj} from {where} has digest {digest}")
        return FetchedManifest(resp.headers.get("content-type", ""), body, digest)

    def blob(self, desc: Descriptor) -> Generator[bytes, None, None]:
        """Streams a blob; the caller verifies size and digest (the content store does)."""
        resp, where = self._get(f"blobs/{desc.digest}", {}, f"blob {desc.digest}")
        try:
            while chunk := self._read(resp, _CHUNK, where):
                yield chunk
        finally:
            resp.close()

    def _read(self, resp: Response, n: int, where: str) -> bytes:
        try:
            return resp.read(n)
        except TimeoutError as e:
            raise DeadlineExceeded(f"{self._what}: no data from {where} for {self._timeout:g}s") from e
        except OSError as e:
            raise Unavailable(f"{self._what}: reading from {where} failed: {e}") from e

    def _get(self, path: str, headers: Mapping[str, str], what: str) -> tuple[Response, str]:
        errors: list[PycridError] = []
        for endpoint in self._endpoints:
            try:
                return self._request(endpoint, path, headers, what), endpoint.host
            except (NotFound, Unavailable) as e:
                errors.append(e)
        # Not found anywhere is NotFound; any outage among the answers makes it Unavailable.
        kind = NotFound if all(isinstance(e, NotFound) for e in errors) else Unavailable
        raise kind("; ".join(map(str, errors))) from errors[-1]

    def _request(self, endpoint: Endpoint, path: str, headers: Mapping[str, str], what: str) -> Response:
        url = f"{endpoint.base_url}/v2/{self._ref.path}/{path}"
        answered = False
        for _ in range(_MAX_REDIRECTS + 1):
            host = urllib.parse.urlsplit(url).netloc
            sent = dict(headers) | (self._auth.header(host) if host == endpoint.host else {})
            try:
                resp = self._transport.request("GET", url, sent, None, self._timeout)
            except TimeoutError as e:
                raise Unavailable(f"{self._what}: {what} at {host}: timed out after {self._timeout:g}s") from e
            except OSError as e:
                raise Unavailable(f"{self._what}: {what} at {host}: connection failed: {e}") from e
            if resp.status == 200:
                return resp
            resp.close()
            if resp.status in _REDIRECTS and resp.headers.get("location"):
                url = urllib.parse.urljoin(url, resp.headers["location"])
                continue
            if resp.status == 401 and not answered and host == endpoint.host:
                self._auth.answer(host, resp.headers.get("www-authenticate", ""))
                answered = True
                continue
            raise _status_error(resp.status, f"{self._what}: {what}", host)
        raise Unavailable(f"{self._what}: {what} at {endpoint.host}: more than {_MAX_REDIRECTS} redirects")


def _status_error(status: int, what: str, host: str) -> PycridError:
    if status == 404:
        return NotFound(f"{what} not found at {host}")
    if status in (401, 403):
        return Unauthenticated(f"{what} at {host}: access denied ({status})")
    if status == 429 or status >= 500:
        return Unavailable(f"{what} at {host}: registry answered {status}")
    return Internal(f"{what} at {host}: unexpected status {status}")
