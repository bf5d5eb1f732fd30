"""Test doubles for the image seams: an in-memory registry transport and recording file ops."""
from __future__ import annotations

import base64
import io
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from runtime.errors import Internal
from runtime.image.fileops import FileOps
from runtime.image.growing import CutOff, GrowingFile
from runtime.image.testimages import Blob, BuiltImage
from runtime.image.unpack import FollowedLayer, InProcessUnpacker, Progress, apply_layer


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc


class FakeResponse:
    def __init__(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self._body = io.BytesIO(body)
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n)

    def close(self) -> None:
        self.closed = True


@dataclass
class _Auth:
    scheme: str  # "bearer" or "basic"
    username: str
    password: str
    realm: str = ""
    token: str = ""
    identity_token: str = ""


@dataclass
class FakeRegistry:
    """Registries by host name; also a Transport (pass it as the manager's ``transport``).

    ``down`` hosts refuse connections; ``before_blob(digest)`` runs before a blob is served (to
    stall or count). Every request is kept in ``requests``.
    """

    requests: list[Request] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    before_blob: Callable[[str], None] | None = None
    _manifests: dict[tuple[str, str, str], Blob] = field(default_factory=dict)
    _blobs: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    _auth: dict[str, _Auth] = field(default_factory=dict)
    _redirects: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, host: str, repo: str, image: BuiltImage, tag: str | None = None) -> None:
        for blob in image.blobs:
            self.put_blob(host, repo, blob.data)
        self.put_manifest(host, repo, image.manifest, tag)

    def put_manifest(self, host: str, repo: str, manifest: Blob, tag: str | None = None) -> None:
        self._manifests[(host, repo, manifest.digest)] = manifest
        if tag:
            self._manifests[(host, repo, tag)] = manifest

    def put_blob(self, host: str, repo: str, data: bytes, digest: str | None = None) -> None:
        self._blobs[(host, repo, digest or Blob("", data).digest)] = data

    def require_bearer(self, host: str, realm: str, username: str = "", password: str = "",
                       token: str = "t0ken", identity_token: str = "") -> None:
        self._auth[host] = _Auth("bearer", username, password, realm, token, identity_token)

    def require_basic(self, host: str, username: str, password: str) -> None:
        self._auth[host] = _Auth("basic", username, password)

    def redirect_blobs(self, host: str, to_base: str) -> None:
        self._redirects[host] = to_base

    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                timeout: float) -> FakeResponse:
        req = Request(method, url, dict(headers), body)
        with self._lock:
            self.requests.append(req)
        if req.host in self.down:
            raise ConnectionRefusedError(f"connection to {req.host} refused")
        for policy in self._auth.values():
            if policy.realm and url.startswith(policy.realm):
                return self._token(req, policy)
        u = urllib.parse.urlsplit(url)
        if (denied := self._check_auth(req)) is not None:
            return denied
        parts = u.path.split("/")  # "", "v2", <repo...>, "manifests"|"blobs", <ref>
        if len(parts) < 5 or parts[1] != "v2":
            return FakeResponse(404)
        repo, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
        if kind == "manifests" and (m := self._manifests.get((req.host, repo, ref))):
            return FakeResponse(200, m.data, {"Content-Type": m.media_type,
                                              "Content-Length": str(len(m.data))})
        if kind == "blobs" and (data := self._blobs.get((req.host, repo, ref))) is not None:
            if req.host in self._redirects:
                return FakeResponse(307, headers={"Location": f"{self._redirects[req.host]}{u.path}"})
            if self.before_blob:
                self.before_blob(ref)
            return FakeResponse(200, data, {"Content-Length": str(len(data))})
        return FakeResponse(404, b'{"errors":[{"code":"NOT_FOUND"}]}')

    def _check_auth(self, req: Request) -> FakeResponse | None:
        policy = self._auth.get(req.host)
        if policy is None:
            return None
        given = req.headers.get("Authorization", "")
        if policy.scheme == "basic":
            if given == "Basic " + _b64(f"{policy.username}:{policy.password}"):
                return None
            return FakeResponse(401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        if given == f"Bearer {policy.token}":
            return None
        repo = "/".join(urllib.parse.urlsplit(req.url).path.split("/")[2:-2])
        challenge = (f'Bearer realm="{policy.realm}",service="{req.host}",'
                     f'scope="repository:{repo}:pull"')
        return FakeResponse(401, headers={"WWW-Authenticate": challenge})

    def _token(self, req: Request, policy: _Auth) -> FakeResponse:
        if req.method == "POST":
            form = urllib.parse.parse_qs((req.body or b"").decode())
            ok = (form.get("grant_type") == ["refresh_token"]
                  and form.get("refresh_token") == [policy.identity_token] and policy.identity_token)
            return FakeResponse(200, json.dumps({"access_token": policy.token}).encode()) if ok \
                else FakeResponse(401)
        if policy.username and req.headers.get("Authorization") != "Basic " + _b64(
                f"{policy.username}:{policy.password}"):
            return FakeResponse(401)
        return FakeResponse(200, json.dumps({"token": policy.token}).encode())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# A recorded privileged operation: its name, the path it acted on, its other arguments.
Call = tuple[str, str, *tuple[object, ...]]


class RecordingFileOps:
    """Records privileged operations instead of doing them; a device node becomes an empty file
    so later steps (chmod, utime, replacement) still find something at its name."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def lchown(self, dir_fd: int, name: str, uid: int, gid: int) -> None:
        self._record("lchown", dir_fd, name, uid, gid)

    def mknod(self, dir_fd: int, name: str, mode: int, device: int) -> None:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd))
        self._record("mknod", dir_fd, name, mode, device)

    def setxattr(self, dir_fd: int, name: str, key: str, value: bytes) -> None:
        self._record("setxattr", dir_fd, name, key, value)

    def _record(self, op: str, dir_fd: int, name: str, *args: object) -> None:
        path = os.path.normpath(os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name))
        with self._lock:
            self.calls.append((op, path, *args))

    def of(self, op: str) -> dict[str, tuple[object, ...]]:
        """The arguments of the last ``op`` per path."""
        with self._lock:
            return {c[1]: c[2:] for c in self.calls if c[0] == op}


class FollowingUnpacker(InProcessUnpacker):
    """Follows every layer as ForkedUnpacker does, in a thread instead of a child: the layer is read
    from the pipe its download is written into (GrowingFile). ``followed``, ``aborted`` and
    ``from_file`` list the layers each way went."""

    def __init__(self, fileops: FileOps) -> None:
        super().__init__(fileops)
        self.followed: list[str] = []
        self.aborted: list[str] = []
        self.from_file: list[str] = []

    def __call__(self, blob: str, media_type: str, dest: str, *, layer: str, diff_id: str,
                 progress: Progress) -> None:
        self.from_file.append(layer)
        super().__call__(blob, media_type, dest, layer=layer, diff_id=diff_id, progress=progress)

    def follows(self, blob_bytes: int) -> bool:
        return True

    def follow(self, source: int, media_type: str, dest: str, *, layer: str, diff_id: str) -> FollowedLayer:
        return _ThreadFollowed(self, os.dup(source), media_type, dest, layer, diff_id)


class _ThreadFollowed:
    """The child's side and the agent's in one: finish() and abort() say how the download ended."""

    def __init__(self, unpacker: FollowingUnpacker, source: int, media_type: str, dest: str,
                 layer: str, diff_id: str) -> None:
        self._unpacker = unpacker
        self._layer = layer
        self._error: BaseException | None = None
        self._said = threading.Event()
        self._whole = False
        reader = GrowingFile(source, self._ended)  # owns the fd, as the child its copy

        def run() -> None:
            try:
                with io.BufferedReader(reader) as blob:
                    apply_layer(blob, media_type, dest, layer=layer, diff_id=diff_id,
                                fileops=unpacker.fileops, progress=lambda n: None)
            except BaseException as e:  # noqa: BLE001 - handed to finish()
                self._error = e

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def _ended(self, seconds: float) -> bool:
        if not self._said.wait(seconds):
            return False
        if not self._whole:
            raise CutOff("the download failed")
        return True

    def finish(self) -> None:
        self._whole = True
        self._said.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._unpacker.followed.append(self._layer)

    def abort(self) -> None:
        self._said.set()
        self._thread.join()
        self._unpacker.aborted.append(self._layer)

    def stopped(self) -> NoReturn:
        self._thread.join()
        raise self._error or Internal(f"layer {self._layer}: stopped reading, with no error")
