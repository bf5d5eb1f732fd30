"""Content digests: validation before a digest names anything, hashing, and OCI chain IDs."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence

from runtime.errors import InvalidArgument

# Only sha256, spelled exactly: a digest becomes a file name, so nothing else may pass
# (CVE-2024-3727: unvalidated digests used as paths).
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def validate_digest(digest: object, what: str) -> str:
    """Returns ``digest`` when it is ``sha256:<64 lowercase hex>``; InvalidArgument naming ``what``."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidArgument(f"{what}: invalid or unsupported digest {digest!r}")
    return digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: Sequence[str]) -> tuple[str, ...]:
    """The OCI chain ID of each layer stack: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else sha256_digest(f"{chains[-1]} {diff_id}".encode()))
    return tuple(chains)


def hex_part(digest: str) -> str:
    return digest.split(":", 1)[1]


def verified(chunks: Iterable[bytes], digest: str, size: int, what: str) -> Iterator[bytes]:
    """``chunks``, passed on as they come; InvalidArgument as soon as there are more than ``size``
    bytes, and at their end unless there were exactly ``size`` bytes with this ``digest``. Whoever
    consumes them must treat nothing as whole until the iteration ended without an error."""
    h = hashlib.sha256()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise InvalidArgument(f"{what}: more than the {size} bytes its descriptor says")
        h.update(chunk)
        yield chunk
    if seen != size:
        raise InvalidArgument(f"{what}: got {seen} bytes, descriptor says {size}")
    if (got := "sha256:" + h.hexdigest()) != digest:
        raise InvalidArgument(f"{what}: content has digest {got}")
