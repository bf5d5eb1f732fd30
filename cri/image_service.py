"""The CRI ImageService servicer: validate, convert, one ImageManager call, convert back."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cri import convert_image as convert
from cri.api.v1 import api_pb2 as pb
from cri.managers import Images
from cri.streams import batches
from runtime.errors import InvalidArgument
from runtime.fsusage import TreeUsage, tree_usage
from runtime.image import Image


@dataclass(frozen=True)
class ImageService:
    images: Images
    container_dir: str  # where containers' writable layers live
    in_use: Callable[[str], str | None]  # image id → a container that uses it, or None

    def PullImage(self, request: pb.PullImageRequest) -> pb.PullImageResponse:
        ref = _ref(request.image)
        img = self.images.pull(ref, convert.credentials(request.auth))
        return pb.PullImageResponse(image_ref=img.id)

    def ImageStatus(self, request: pb.ImageStatusRequest) -> pb.ImageStatusResponse:
        img = self.images.status(_ref(request.image))
        if img is None:
            return pb.ImageStatusResponse()
        response = pb.ImageStatusResponse(image=convert.image(img))
        if request.verbose:
            response.info["info"] = json.dumps({"id": img.id, "chainIDs": list(img.chain_ids),
                                                "imageSpec": self.images.config_document(img.id)})
        return response

    def ListImages(self, request: pb.ListImagesRequest) -> pb.ListImagesResponse:
        return pb.ListImagesResponse(images=[convert.image(i) for i in self._list(request.filter)])

    def StreamImages(self, request: pb.StreamImagesRequest) -> Iterator[pb.StreamImagesResponse]:
        for batch in batches(self._list(request.filter)):
            yield pb.StreamImagesResponse(images=[convert.image(i) for i in batch])

    def RemoveImage(self, request: pb.RemoveImageRequest) -> pb.RemoveImageResponse:
        self.images.remove(_ref(request.image), in_use=self.in_use)
        return pb.RemoveImageResponse()

    def ImageFsInfo(self, request: pb.ImageFsInfoRequest) -> pb.ImageFsInfoResponse:
        image_fs = self.images.fs_info()
        containers = tree_usage(self.container_dir)
        return pb.ImageFsInfoResponse(
            image_filesystems=[_usage(TreeUsage(image_fs.mountpoint, image_fs.used_bytes, image_fs.inodes_used),
                                      image_fs.timestamp_ns)],
            container_filesystems=[_usage(containers, image_fs.timestamp_ns)])

    def _list(self, image_filter: pb.ImageFilter) -> list[Image]:
        return self.images.list(image_filter.image.image or None)


def _ref(spec: pb.ImageSpec) -> str:
    if not spec.image:
        raise InvalidArgument("image reference is empty")
    return spec.image


def _usage(usage: TreeUsage, now: int) -> pb.FilesystemUsage:
    return pb.FilesystemUsage(timestamp=now, fs_id=pb.FilesystemIdentifier(mountpoint=usage.mountpoint),
                              used_bytes=pb.UInt64Value(value=usage.used_bytes),
                              inodes_used=pb.UInt64Value(value=usage.inodes_used))
