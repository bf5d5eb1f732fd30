"""Every RPC of CRI v1 has a handler: none falls through to UNIMPLEMENTED (issue 15's 41 of 41)."""
from __future__ import annotations

from cri.api.v1 import api_pb2 as pb
from cri.image_service import ImageService
from cri.runtime_service import RuntimeService


def test_every_cri_rpc_is_defined() -> None:
    missing = [f"{service}.{m.name}" for service, cls in (("RuntimeService", RuntimeService),
                                                         ("ImageService", ImageService))
               for m in pb.DESCRIPTOR.services_by_name[service].methods if not callable(getattr(cls, m.name, None))]
    total = sum(len(pb.DESCRIPTOR.services_by_name[s].methods) for s in ("RuntimeService", "ImageService"))
    assert (missing, total) == ([], 41)
