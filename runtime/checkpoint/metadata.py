"""The metadata files of a checkpoint archive: config.dump and spec.dump.

config.dump carries the fields checkpointctl reads (id, name, rootfsImage*, runtime, createdTime,
checkpointedTime: the names CRI-O and Podman use) and, under "pycrid", what pycrid needs to
restore the container. spec.dump is an OCI runtime spec of the container as far as pycrid has one
(process, root, hostname, mounts, namespaces) with the io.kubernetes.cri.* annotations that
checkpointctl shows for non-CRI-O engines. An archive is hostile input until checked: ``parse``
holds every field to its type and shape (runtime/store/codec.py) and raises InvalidArgument.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from runtime.errors import InvalidArgument
from runtime.process.initspec import HOST, InitSpec
from runtime.sandbox.model import SandboxConfig
from runtime.store.codec import decode, encode

VERSION = 1
RUNTIME = "pycrid"
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_STDIO_KEY = re.compile(r"(pipe:\[\d{1,20}\]|file\[[0-9a-f]{1,16}:[0-9a-f]{1,16}\])?")
_MOUNT_KEY = re.compile(r"/[^:\[\]\s]*")  # CRIU's mnt[KEY]:VALUE syntax has no escapes


@dataclass(frozen=True)
class Process:
    """The checkpointed process as its container was created: a restored container reports it."""

    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()
    stdin: bool = False
    stdin_once: bool = False


@dataclass(frozen=True)
class Checkpointed:
    """What pycrid records of a checkpointed container and needs to restore it."""

    container_id: str
    name: str
    image_id: str  # the image the rootfs diff applies to; it must be on the node to restore
    image_name: str
    image_ref: str
    created_at: int  # ns since the epoch
    checkpointed_at: int
    process: Process
    mounts: tuple[str, ...]  # the external mounts in the images, by path in the container
    stdio: tuple[str, ...]  # the dumped init's fds 0-2 as CRIU names them ("" for none)
    rootfs_diff_digest: str  # sha256 of rootfs-diff.tar, checked as it is applied


def config_dump(c: Checkpointed) -> bytes:
    return json.dumps({
        "id": c.container_id, "name": c.name, "rootfsImage": c.image_id, "rootfsImageRef": c.image_ref,
        "rootfsImageName": c.image_name, "runtime": RUNTIME, "createdTime": rfc3339(c.created_at),
        "checkpointedTime": rfc3339(c.checkpointed_at), "pycrid": {"version": VERSION, **encode(c)},
    }, indent=2).encode()


def parse(raw: bytes) -> Checkpointed:
    """config.dump as written by ``config_dump``; InvalidArgument for anything else."""
    try:
        document = json.loads(raw)
        own = dict(document["pycrid"])
        version = own.pop("version")
        if version != VERSION:
            raise InvalidArgument(f"config.dump: pycrid metadata version {version!r}, this pycrid reads {VERSION}")
        c = decode(Checkpointed, own)
    except InvalidArgument:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"config.dump is not a pycrid checkpoint's: {e}") from e
    _check(c)
    return c


def _check(c: Checkpointed) -> None:
    if not _IMAGE_ID.fullmatch(c.image_id):
        raise InvalidArgument(f"config.dump: image id {c.image_id!r:.80} is not sha256:<hex>")
    if not _IMAGE_ID.fullmatch(c.rootfs_diff_digest):
        raise InvalidArgument(f"config.dump: rootfs diff digest {c.rootfs_diff_digest!r:.80} is not sha256:<hex>")
    if len(c.stdio) != 3 or not all(_STDIO_KEY.fullmatch(k) for k in c.stdio):
        raise InvalidArgument(f"config.dump: stdio {c.stdio!r:.200} is not three CRIU file keys")
    bad = [m for m in c.mounts if not _MOUNT_KEY.fullmatch(m) or ".." in m.split("/")]
    if bad:
        raise InvalidArgument(f"config.dump: external mount keys {bad!r:.200} are not clean container paths")


def usable_mount_key(path: str) -> bool:
    """Whether CRIU can be told about a mount at ``path`` (its option syntax has no escapes)."""
    return bool(_MOUNT_KEY.fullmatch(path))


def spec_dump(spec: InitSpec, annotations: dict[str, str]) -> bytes:
    """An OCI runtime spec of the container, for checkpointctl and people; not read back."""
    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "mount"}]
    for kind, where in (("network", spec.namespaces.net), ("ipc", spec.namespaces.ipc),
                        ("uts", spec.namespaces.uts)):
        if where != HOST:
            namespaces.append({"type": kind, **({"path": where} if where else {})})
    return json.dumps({
        "ociVersion": "1.0.2",
        "process": {"terminal": spec.tty, "args": list(spec.args), "env": list(spec.env), "cwd": spec.cwd or "/",
                    "capabilities": {"bounding": list(spec.capabilities), "effective": list(spec.capabilities),
                                     "permitted": list(spec.capabilities)},
                    "noNewPrivileges": spec.no_new_privs},
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": [{"destination": m.target, "type": "bind", "source": m.source,
                    "options": ["rbind", "ro" if m.readonly else "rw", m.propagation]} for m in spec.mounts],
        "annotations": annotations,
        "linux": {"namespaces": namespaces, "cgroupsPath": spec.cgroup, "maskedPaths": list(spec.masked_paths),
                  "readonlyPaths": list(spec.readonly_paths)},
    }, indent=2).encode()


def rfc3339(ns: int) -> str:
    """As Go's time.Time marshals to JSON (checkpointctl parses it so)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{rest:09d}Z" if rest else f"{text}Z"


def cri_annotations(container_name: str, sandbox_id: str, sandbox: SandboxConfig, image: str) -> dict[str, str]:
    """The io.kubernetes.cri.* annotations containerd gives a container's spec."""
    keys = {"container-type": "container", "container-name": container_name, "sandbox-id": sandbox_id,
            "sandbox-name": sandbox.name, "sandbox-namespace": sandbox.namespace, "sandbox-uid": sandbox.uid,
            "image-name": image}
    return {"io.container.manager": RUNTIME, **{f"io.kubernetes.cri.{k}": v for k, v in keys.items()}}
