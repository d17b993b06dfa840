"""crawler/codings.py on its own: Content-Encoding undone in bounded pieces, whatever the chunking, with
every inner layer capped."""
from __future__ import annotations

import gzip
import io
import os
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings, strategies as st

from crawler.codings import PIECE, CodingError, ContentDecoder, LayerTooLarge, parse_codings

TEXT = os.urandom(3000).hex().encode() * 20   # 120 KB, compressible but not trivially

ENCODE = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def encode(data: bytes, codings: list[str]) -> bytes:
    for coding in codings:   # in the order applied
        data = ENCODE[coding](data)
    return data


def decode(raw: bytes, codings: list[str], limit: int = 10**8, chunk: int = 65536) -> tuple[bytes, int]:
    """(decoded body, largest piece handed out)."""
    decoder = ContentDecoder(codings, limit)
    pieces = [p for i in range(0, len(raw), chunk) for p in decoder.feed(raw[i : i + chunk])]
    return b"".join(pieces), max(map(len, pieces), default=0)


def test_parse_codings() -> None:
    assert parse_codings(None) == [] and parse_codings("identity") == []
    assert parse_codings("GZIP, br") == ["gzip", "br"] and parse_codings("x-gzip") == ["gzip"]
    with pytest.raises(CodingError, match="unsupported"):
        parse_codings("gzip, compress")
    with pytest.raises(CodingError, match="stacked"):
        parse_codings("gzip, gzip, gzip, gzip")


@settings(max_examples=25, deadline=None)
@given(codings=st.lists(st.sampled_from(sorted(ENCODE)), min_size=1, max_size=3),
       chunk=st.integers(min_value=1, max_value=70_000))
def test_round_trip_whatever_the_chunking(codings: list[str], chunk: int) -> None:
    raw = encode(TEXT, codings)
    body, biggest = decode(raw, codings, chunk=max(chunk, len(raw) // 400))   # at most ~400 chunks: fast
    assert body == TEXT


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_pieces_stay_small_even_for_a_bomb(coding: str) -> None:
    raw = encode(bytes(16 << 20), [coding])
    decoder = ContentDecoder([coding], 10**9)
    pieces = decoder.feed(raw)
    first = [next(pieces) for _ in range(3)]   # lazy: only what is asked for is inflated
    assert all(len(p) <= PIECE + 32 * 1024 for p in first)


def test_an_inner_layer_that_yields_nothing_cannot_spin_forever() -> None:
    # gzip header, then empty stored deflate blocks (5 bytes each, no output ever), gzipped again:
    # the outer layer inflates to endless input for the inner one. Capped at the limit, not at the stream.
    inner = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x00\x00\x00\xff\xff" * 4_000_000   # 20 MB
    outer = gzip.compress(inner)
    decoder = ContentDecoder(["gzip", "gzip"], 1_000_000)
    with pytest.raises(LayerTooLarge):
        for _ in decoder.feed(outer):
            pass


def test_gzip_members_and_trailing_bytes() -> None:
    first = gzip.compress(TEXT[:1000])
    two = first + gzip.compress(TEXT[1000:])
    assert decode(two, ["gzip"])[0] == TEXT                       # RFC 1952: members concatenate
    for cut in (len(first) - 1, len(first), len(first) + 1):      # a network chunk ending at the seam
        decoder = ContentDecoder(["gzip"], 10**8)
        assert b"".join([*decoder.feed(two[:cut]), *decoder.feed(two[cut:])]) == TEXT, cut
    assert decode(gzip.compress(TEXT) + b"\0\0junk", ["gzip"])[0] == TEXT   # trailing garbage ignored


def test_raw_deflate_and_corrupt_streams() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode(c.compress(TEXT) + c.flush(), ["deflate"])[0] == TEXT
    with pytest.raises(CodingError, match="gzip"):
        decode(b"<html>plain</html>", ["gzip"])
    with pytest.raises(CodingError, match="zstd"):
        decode(b"\x28\xb5\x2f\xfd" + b"\xff" * 50, ["zstd"])


def test_zstd_window_is_capped() -> None:
    # a streamed frame (no content size) that declares a 128 MiB window: decoding it would reserve that much
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as writer:
        writer.write(TEXT)
    assert zstandard.get_frame_parameters(out.getvalue()).window_size == 1 << 27
    with pytest.raises(CodingError, match="too much memory"):
        decode(out.getvalue(), ["zstd"])
