"""SPDY/3 name/value header blocks and their zlib compression.

A block is a 32-bit pair count, then per pair a 32-bit name length, the name, a 32-bit value length
and the value. Blocks are compressed with zlib primed with the SPDY/3 dictionary, and each direction
keeps one compression context for the life of the connection: a block may refer back to what earlier
blocks sent, so every block must be decoded, in order, even one whose frame is then dropped.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

from cri.streaming.spdy_errors import ProtocolError

# The SPDY/3 draft's zlib dictionary (section 2.6.10.1): these words, each after its 32-bit length...
_DICTIONARY_WORDS = (
    *(
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status"
    ).split(),
    "200 OK",
    *"version HTTP/1.1 url public set-cookie keep-alive origin".split(),
)
# ...then this text as it is.
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(
    struct.pack(">I", len(word)) + word.encode("ascii") for word in _DICTIONARY_WORDS
) + _DICTIONARY_TAIL.encode("ascii")

_U32 = struct.Struct(">I")


def pack_header_block(headers: Mapping[str, str]) -> bytes:
    """The uncompressed block. Names must be non-empty lowercase ASCII; values are UTF-8 (a NUL in
    a value separates several values of one name, as the draft says)."""
    parts = [_U32.pack(len(headers))]
    for name, value in headers.items():
        if not name or name != name.lower() or not name.isascii():
            raise ValueError(f"SPDY header names are non-empty lowercase ASCII, not {name!r}")
        raw_name, raw_value = name.encode("ascii"), value.encode("utf-8", "surrogateescape")
        parts += [_U32.pack(len(raw_name)), raw_name, _U32.pack(len(raw_value)), raw_value]
    return b"".join(parts)


def unpack_header_block(block: bytes, max_headers: int) -> dict[str, str]:
    """Parses one whole uncompressed block; every length is checked against what is left of it."""
    view = memoryview(block)
    count, offset = _take_u32(view, 0)
    if count > max_headers:
        raise ProtocolError(f"header block has {count} pairs, more than the limit of {max_headers}")
    headers: dict[str, str] = {}
    for _ in range(count):
        raw_name, offset = _take_string(view, offset)
        raw_value, offset = _take_string(view, offset)
        if not raw_name or not raw_name.isascii() or raw_name != raw_name.lower():
            raise ProtocolError(f"header name {raw_name[:64]!r} is not non-empty lowercase ASCII")
        name = raw_name.decode("ascii")
        if name in headers:
            raise ProtocolError(f"header {name!r} appears twice")
        headers[name] = raw_value.decode("utf-8", "surrogateescape")
    if offset != len(view):
        raise ProtocolError(f"{len(view) - offset} bytes after the last header pair")
    return headers


def _take_u32(view: memoryview, offset: int) -> tuple[int, int]:
    if offset + 4 > len(view):
        raise ProtocolError("header block ends inside a length field")
    return _U32.unpack_from(view, offset)[0], offset + 4


def _take_string(view: memoryview, offset: int) -> tuple[bytes, int]:
    length, offset = _take_u32(view, offset)
    if length > len(view) - offset:
        raise ProtocolError(f"header string of {length} bytes overruns its block")
    return bytes(view[offset:offset + length]), offset + length


class HeaderDeflater:
    """Our direction's compression context: one per connection, used for blocks in the order they
    go on the wire (the caller serializes)."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=DICTIONARY)

    def compress(self, headers: Mapping[str, str]) -> bytes:
        block = pack_header_block(headers)
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderInflater:
    """The peer's direction: decompresses each block with the context earlier blocks left, and
    never inflates more than max_block bytes (a small frame can otherwise expand a thousandfold)."""

    def __init__(self, max_block: int, max_headers: int) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)
        self._max_block = max_block
        self._max_headers = max_headers

    def decompress(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._zlib.decompress(compressed, self._max_block + 1)
        except zlib.error as e:
            raise ProtocolError(f"header block does not decompress: {e}") from None
        if len(block) > self._max_block or self._zlib.unconsumed_tail:
            raise ProtocolError(f"header block inflates past {self._max_block} bytes")
        if self._zlib.eof:
            raise ProtocolError("the peer ended its header compression stream")
        return unpack_header_block(block, self._max_headers)
