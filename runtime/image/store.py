"""Image records: what ``crictl images`` lists, persisted atomically in ``<root>/images.json``.

Tags behave like containerd's CRI: a tag names one image; re-pulling a tag moves it to the new
image, and an image left with neither tags nor digests stays, known by its id (crictl shows it
as <none>), until RemoveImage (the kubelet's image GC) removes it. Dropping it here would free
the layers of an image a container may still run on.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from runtime.errors import Internal
from runtime.image.config import ImageConfig, ImageConfigRecord
from runtime.store.checkpoint import write_json

_VERSION = 1


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<hex>", the config digest
    repo_tags: tuple[str, ...]  # "docker.io/library/busybox:1.36"
    repo_digests: tuple[str, ...]  # "docker.io/library/busybox@sha256:<manifest digest>"
    size: int  # bytes of index, manifest, config and compressed layers, as containerd counts
    uid: int | None  # from USER when its user part is numeric
    username: str  # from USER otherwise
    pinned: bool  # never garbage-collected by the kubelet
    config: ImageConfig
    chain_ids: tuple[str, ...]  # snapshots, bottom layer first
    blobs: tuple[str, ...]  # content digests this image keeps alive


class ImageStore:
    """Thread-safe; every change is on disk before it is visible."""

    def __init__(self, root: str) -> None:
        self._path = os.path.join(root, "images.json")
        self._lock = threading.Lock()
        self._images: dict[str, Image] = self._load()

    def get(self, image_id: str) -> Image | None:
        with self._lock:
            return self._images.get(image_id)

    def find(self, name: str) -> Image | None:
        """The image holding the repo tag or repo digest ``name``."""
        with self._lock:
            return next((i for i in self._images.values()
                         if name in i.repo_tags or name in i.repo_digests), None)

    def list(self) -> list[Image]:
        with self._lock:
            return sorted(self._images.values(), key=lambda i: i.id)

    def add(self, image: Image) -> Image:
        """Records ``image``, merging with an existing record of the same ID and taking its names
        from any other image that held them."""
        with self._lock:
            images = dict(self._images)
            old = images.get(image.id)
            if old is not None:
                image = dataclasses.replace(
                    image,
                    repo_tags=_union(old.repo_tags, image.repo_tags),
                    repo_digests=_union(old.repo_digests, image.repo_digests),
                    pinned=old.pinned or image.pinned,
                    blobs=_union(old.blobs, image.blobs))
            for other in list(images.values()):
                if other.id == image.id:
                    continue
                tags = tuple(t for t in other.repo_tags if t not in image.repo_tags)
                digests = tuple(d for d in other.repo_digests if d not in image.repo_digests)
                if (tags, digests) == (other.repo_tags, other.repo_digests):
                    continue
                images[other.id] = dataclasses.replace(other, repo_tags=tags, repo_digests=digests)
            images[image.id] = image
            self._commit(images)
            return image

    def remove(self, image_id: str) -> Image | None:
        return self.remove_if(image_id, lambda _image: True)

    def remove_if(self, image_id: str, allowed: Callable[[Image], bool]) -> Image | None:
        """Removes the image when ``allowed(image)``, checked under the store lock."""
        with self._lock:
            image = self._images.get(image_id)
            if image is None or not allowed(image):
                return None
            images = {k: v for k, v in self._images.items() if k != image_id}
            self._commit(images)
            return image

    def _commit(self, images: dict[str, Image]) -> None:
        write_json(Path(self._path), {"version": _VERSION, "images": [_to_json(i) for i in images.values()]})
        self._images = images

    def _load(self) -> dict[str, Image]:
        try:
            with open(self._path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise Internal(f"image store {self._path}: unreadable: {e}") from e
        if doc.get("version") != _VERSION:
            raise Internal(f"image store {self._path}: unknown version {doc.get('version')!r}")
        try:
            return {i.id: i for i in map(_from_json, doc["images"])}
        except (KeyError, TypeError) as e:
            raise Internal(f"image store {self._path}: malformed record: {e!r}") from e


def _union(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


class ImageRecord(TypedDict):
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    uid: int | None
    username: str
    pinned: bool
    config: ImageConfigRecord
    chain_ids: list[str]
    blobs: list[str]


def _to_json(image: Image) -> ImageRecord:
    return {"id": image.id, "repo_tags": list(image.repo_tags), "repo_digests": list(image.repo_digests),
            "size": image.size, "uid": image.uid, "username": image.username, "pinned": image.pinned,
            "config": image.config.to_json(), "chain_ids": list(image.chain_ids),
            "blobs": list(image.blobs)}


def _from_json(d: ImageRecord) -> Image:
    return Image(id=d["id"], repo_tags=tuple(d["repo_tags"]), repo_digests=tuple(d["repo_digests"]),
                 size=d["size"], uid=d["uid"], username=d["username"], pinned=d["pinned"],
                 config=ImageConfig.from_json(d["config"]), chain_ids=tuple(d["chain_ids"]),
                 blobs=tuple(d["blobs"]))
