"""cri.rpc.fields against hpack (an independent HPACK): what hpack.Encoder writes over many blocks
(its dynamic table filling, evicting, resized) FieldDecoder reads back the same; hostile blocks are
COMPRESSION_ERROR; and what fields.encode writes hpack.Decoder reads with its table left empty."""
from __future__ import annotations

import random

import hpack
import pytest

from cri.rpc import fields
from cri.rpc.fields import FieldDecoder
from cri.rpc.frames import ErrorCode, ProtocolViolation

Fields = list[tuple[bytes, bytes]]
UNLIMITED = 1 << 30
GRPC = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/runtime.v1.RuntimeService/Version"),
        (b":authority", b"localhost"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]


def header_lists(seed: int, count: int) -> list[Fields]:
    """gRPC-like requests with extra fields: some repeat (indexed), some new, some long (length
    integers past one byte), some big enough that a few of them overflow the 4096-byte table."""
    rng = random.Random(seed)
    pool = [(f"x-key-{i}".encode(), bytes(rng.choice(b"abcdefgh0123 -_/") for _ in range(rng.choice(
        (0, 1, 20, 127, 128, 300, 1500, 3000))))) for i in range(40)]
    lists = []
    for _ in range(count):
        extra = rng.sample(pool, rng.randint(0, 6)) + [(b"x-new", str(rng.random()).encode())]
        lists.append(GRPC + [(b"grpc-timeout", f"{rng.randint(1, 99999999)}m".encode())] + extra)
    return lists


def indexed(index: int) -> bytes:
    out = hpack.hpack.encode_integer(index, 7)
    out[0] |= 0x80
    return bytes(out)


def same_table(decoder: FieldDecoder, encoder: hpack.Encoder) -> None:
    """The decoder holds hpack's entries and no more: its oldest one reads as hpack's, one past it fails
    (hpack's indexes never reach past its table, so an eviction missed would not show otherwise)."""
    entries = encoder.header_table.dynamic_entries
    if entries:
        assert decoder.decode(indexed(61 + len(entries)), UNLIMITED) == [entries[-1]]
    compression_error(indexed(62 + len(entries)), decoder)


def encoded(encoder: hpack.Encoder, headers: Fields | list[hpack.HeaderTuple], huffman: bool) -> bytes:
    return encoder.encode(headers, huffman=huffman)


@pytest.mark.parametrize("huffman", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_many_blocks_over_one_dynamic_table(seed: int, huffman: bool) -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    evicted = 0
    for headers in header_lists(seed, 200):
        before = len(encoder.header_table.dynamic_entries)
        assert decoder.decode(encoded(encoder, headers, huffman), UNLIMITED) == headers
        evicted += before > len(encoder.header_table.dynamic_entries)
        same_table(decoder, encoder)
    assert evicted, "no block evicted: the test did not overflow the table"


def test_indexes_past_127_and_names_from_the_dynamic_table() -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    small = [(f"n{i:03}".encode(), b"v") for i in range(100)]  # 100 * 36 bytes: all stay in the table
    assert decoder.decode(encoder.encode(small), UNLIMITED) == small
    oldest = small[:5]  # dynamic indexes 62 + 95.. : past the 7-bit prefix
    block = encoder.encode(oldest)
    assert block[0] == 0xFF and len(block) == 10, "hpack did not use multi-byte indexes"
    assert decoder.decode(block, UNLIMITED) == oldest
    renamed = [(name, b"other") for name, _ in small[:3]]  # a literal naming a dynamic entry
    assert decoder.decode(encoder.encode(renamed, huffman=False), UNLIMITED) == renamed


def test_table_size_updates_evict_as_hpack_does() -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    headers = [(f"k{i}".encode(), b"x" * 50) for i in range(30)]
    for size in (4096, 200, 0, 4096, 1000, 4096):
        encoder.header_table_size = size
        block = encoder.encode(headers)
        assert decoder.decode(block, UNLIMITED) == headers
        assert decoder.decode(encoder.encode(headers), UNLIMITED) == headers  # indexed, if they fit
        same_table(decoder, encoder)
    encoder.header_table_size = 100
    encoder.header_table_size = 4096  # two updates in one block: both allowed at its start
    assert decoder.decode(encoder.encode(headers[:3]), UNLIMITED) == headers[:3]
    same_table(decoder, encoder)


def test_an_entry_larger_than_the_table_empties_it() -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    for headers in ([(b"a", b"1"), (b"b", b"2")], [(b"huge", b"h" * 5000)], [(b"a", b"1"), (b"huge", b"h" * 5000)]):
        assert decoder.decode(encoder.encode(headers), UNLIMITED) == headers
    assert len(encoder.header_table.dynamic_entries) == 0
    compression_error(b"\xbe", decoder)  # nor is the huge entry kept


@pytest.mark.parametrize("huffman", [True, False])
def test_never_indexed_fields_stay_out_of_the_table(huffman: bool) -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    secret = hpack.NeverIndexedHeaderTuple(b"authorization", b"Bearer s3cret")
    for _ in range(3):  # a wrongly kept secret would shift the indexes of the entries after it
        headers = [hpack.HeaderTuple(b"x-a", b"1"), secret, hpack.HeaderTuple(b"x-b", b"2")]
        block = encoded(encoder, headers, huffman)
        assert b"\x1f\x08" in block  # §6.2.3's never-indexed form (0001xxxx), name index 15 + 8
        assert decoder.decode(block, UNLIMITED) == [(b"x-a", b"1"), tuple(secret), (b"x-b", b"2")]


def test_literals_without_indexing_from_a_hand_made_block() -> None:
    # hpack never writes §6.2.2's form (first byte 0000xxxx): by hand, name by index and by literal
    block = b"\x04\x05/path" + b"\x00\x03abc\x03def"
    assert FieldDecoder().decode(block, UNLIMITED) == [(b":path", b"/path"), (b"abc", b"def")]


def compression_error(block: bytes, decoder: FieldDecoder | None = None) -> str:
    with pytest.raises(ProtocolViolation) as err:
        (decoder or FieldDecoder()).decode(block, UNLIMITED)
    assert err.value.code == ErrorCode.COMPRESSION_ERROR
    return str(err.value)


@pytest.mark.parametrize("block", [
    b"\x80",  # index 0
    b"\xbe",  # index 62: past the static table, the dynamic one empty
    b"\x7e\x01v",  # a literal whose name is index 62
    b"\x0f\x30\x01v",  # a not-indexed literal whose name is index 63
    b"\xff\x80\x01",  # index 127 + 128
    b"\x00\x05ab",  # a name of 5 bytes, 2 there
    b"\x40\x01a\x7f\xff\x01",  # a value of 127 + 255 bytes, none there
    b"\x00",  # ends before the name
    b"\x40\x01a",  # ends before the value
    b"\xff",  # an integer that promises a continuation byte
    b"\xff\x80\x80",  # and one whose continuation never ends
    b"\xff\x80\x80\x80\x80\x80\x01",  # past 2^28
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # far past 2^28
    b"\x82\x20",  # a table size update after a field
    b"\x3f\xe2\x1f",  # a table size update to 4097
    b"\x3f\xe1\xff\xff\xff\x0f",  # to ~2^32
    b"\x00\x81\x18\x00",  # a Huffman name padded with zeros
    b"\x00\x82\x1f\xff\x00",  # padded with more than 7 bits
    b"\x00\x84\xff\xff\xff\xff\x00",  # the EOS symbol
], ids=["index-0", "index-62", "name-index-62", "name-index-63", "index-255", "short-name", "short-value",
        "no-name", "no-value", "cut-integer", "endless-integer", "integer-2^28", "integer-huge",
        "size-update-late", "size-update-4097", "size-update-huge", "huffman-zero-pad", "huffman-long-pad",
        "huffman-eos"])
def test_hostile_blocks_are_compression_errors(block: bytes) -> None:
    compression_error(block)


def test_an_index_just_past_the_dynamic_table() -> None:
    decoder = FieldDecoder()
    assert decoder.decode(b"\x40\x01a\x01b", UNLIMITED) == [(b"a", b"b")]
    assert decoder.decode(b"\xbe", UNLIMITED) == [(b"a", b"b")]  # 62: the one dynamic entry
    compression_error(b"\xbf", decoder)  # 63


def test_a_table_shrunk_to_nothing_forgets_its_entries() -> None:
    decoder = FieldDecoder()
    decoder.decode(b"\x40\x01a\x01b", UNLIMITED)
    compression_error(b"\x20\xbe", decoder)  # size 0, then index 62


def test_a_table_size_update_of_4096_and_two_at_the_start_are_allowed() -> None:
    assert FieldDecoder().decode(b"\x3f\xe1\x1f", UNLIMITED) == []
    assert FieldDecoder().decode(b"\x20\x3f\xe1\x1f\x82", UNLIMITED) == [(b":method", b"GET")]


def field_size(headers: Fields) -> int:
    return sum(len(name) + len(value) + 32 for name, value in headers)  # as MAX_HEADER_LIST_SIZE counts


def test_max_list_refuses_a_large_list_and_keeps_the_table_in_sync() -> None:
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    big = GRPC + [(f"x-{i}".encode(), b"v" * 150) for i in range(20)]  # ~3800 bytes: all fit the table
    limit = field_size(big)
    assert decoder.decode(encoder.encode(big), 100) is None  # past the limit from its second field
    block = encoder.encode(big)  # now one byte a field: indexes to what the refused block added
    assert len(block) == len(big)
    assert decoder.decode(block, limit) == big  # exactly at the limit: taken
    assert decoder.decode(block, limit - 1) is None
    follow = [(b"x-pad", b"p" * 3000), (b"x-19", b"v" * 150), (b"x-late", b"l")]  # evicts
    assert decoder.decode(encoder.encode(follow), 1 << 16) == follow


def test_max_list_counts_indexed_fields_too() -> None:
    # a small block that expands: one 3000-byte entry, referred to six times
    encoder, decoder = hpack.Encoder(), FieldDecoder()
    bomb = [(b"x-pad", b"p" * 3000)] * 6
    block = encoder.encode(bomb)
    assert len(block) < 3100
    assert decoder.decode(block, 16 * 1024) is None
    assert decoder.decode(encoder.encode(bomb[:5]), 16 * 1024) == bomb[:5]


ENCODED = [
    [(b":status", b"200"), (b"content-type", b"application/grpc")],
    [(b"grpc-status", b"13"), (b"grpc-message", b"m" * 127), (b"x-long", b"v" * 128)],
    [(b"grpc-message", b"%E2%9C%93 " * 500), (b"n" * 300, b""), (b"", b"empty name")],
    [],
]


@pytest.mark.parametrize("headers", ENCODED, ids=["head", "integers", "long", "none"])
def test_encode_is_read_by_hpack_and_touches_no_table(headers: Fields) -> None:
    decoder = hpack.Decoder(max_header_list_size=1 << 20)
    block = fields.encode(headers)
    for _ in range(2):  # the same block twice: no state on either side
        assert decoder.decode(block, raw=True) == headers
    assert len(decoder.header_table.dynamic_entries) == 0
    assert FieldDecoder().decode(block, UNLIMITED) == headers
