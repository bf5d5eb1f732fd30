"""HPACK (RFC 7541) as a gRPC server needs it: the client's header blocks decoded, with the
dynamic table the client fills; the server's few fields encoded as literals that touch no table,
so its encoder keeps no state and replies may leave in any order. The static table and the
Huffman code are the hpack package's."""
from __future__ import annotations

from collections import deque

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

from cri.rpc.frames import ErrorCode, ProtocolViolation

Field = tuple[bytes, bytes]

STATIC: tuple[Field, ...] = HeaderTable.STATIC_TABLE
TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE: the default, which the server never changes
ENTRY_OVERHEAD = 32


def _bad(message: str) -> ProtocolViolation:
    return ProtocolViolation(ErrorCode.COMPRESSION_ERROR, message)


def _integer(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while pos < len(block):
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise _bad("an HPACK integer past 2^28")
    raise _bad("a header block ends inside an integer")


class FieldDecoder:
    """One connection's decoder: its dynamic table lives as long as the connection."""

    def __init__(self) -> None:
        self._dynamic: deque[Field] = deque()  # the newest first, as HPACK indexes it
        self._size = 0
        self._limit = TABLE_SIZE

    def decode(self, block: bytes, max_list: int) -> list[Field] | None:
        """The block's fields, or None when they add up to more than ``max_list`` bytes (as
        SETTINGS_MAX_HEADER_LIST_SIZE counts them). The whole block is read either way: the
        table must follow every entry the client added."""
        fields: list[Field] = []
        size, pos, end = 0, 0, len(block)
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # an indexed field
                index, pos = _integer(block, pos, 7)
                field = self._entry(index)
            elif byte & 0x40:  # a literal the table keeps
                field, pos = self._literal(block, pos, 6)
                self._add(field)
            elif byte & 0x20:  # a dynamic table size update, only before the block's first field
                limit, pos = _integer(block, pos, 5)
                if size or limit > TABLE_SIZE:  # size: a field was read already
                    raise _bad(f"a table size update to {limit} (at most {TABLE_SIZE}, before any field)")
                self._limit = limit
                self._evict(0)
                continue
            else:  # a literal, not indexed or never indexed
                field, pos = self._literal(block, pos, 4)
            size += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if size <= max_list:
                fields.append(field)
        return fields if size <= max_list else None

    def _entry(self, index: int) -> Field:
        if 0 < index <= len(STATIC):
            return STATIC[index - 1]
        if len(STATIC) < index <= len(STATIC) + len(self._dynamic):
            return self._dynamic[index - len(STATIC) - 1]
        raise _bad(f"header table index {index} is not in the table")

    def _literal(self, block: bytes, pos: int, prefix_bits: int) -> tuple[Field, int]:
        index, pos = _integer(block, pos, prefix_bits)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = self._string(block, pos)
        value, pos = self._string(block, pos)
        return (name, value), pos

    def _string(self, block: bytes, pos: int) -> tuple[bytes, int]:
        if pos >= len(block):
            raise _bad("a header block ends before a string")
        huffman = block[pos] & 0x80
        length, pos = _integer(block, pos, 7)
        end = pos + length
        if end > len(block):
            raise _bad(f"a string of {length} bytes runs past its header block")
        raw = block[pos:end]
        if not huffman:
            return raw, end
        try:
            return decode_huffman(raw), end
        except HPACKDecodingError as e:
            raise _bad(f"a bad Huffman string: {e}") from None

    def _add(self, field: Field) -> None:
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        self._evict(size)
        if size <= self._limit:  # a larger entry empties the table and is not kept (§4.4)
            self._dynamic.appendleft(field)
            self._size += size

    def _evict(self, room: int) -> None:
        while self._dynamic and self._size + room > self._limit:
            name, value = self._dynamic.pop()
            self._size -= len(name) + len(value) + ENTRY_OVERHEAD


def _encode_integer(value: int, prefix_bits: int) -> bytes:
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes((value,))
    out = [mask]
    value -= mask
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_string(raw: bytes) -> bytes:
    return _encode_integer(len(raw), 7) + raw  # never Huffman: our values are short or rare


def encode(fields: list[Field]) -> bytes:
    """Every field as a literal with its name, not indexed (first byte 0): no table is touched."""
    return b"".join(b"\0" + _encode_string(name) + _encode_string(value) for name, value in fields)
