"""Content-Encoding undone by us, layer by layer, in bounded pieces: a compressed body can never become
more decoded bytes in memory than the caller is willing to keep.

Why not httpx's decoders: httpx inflates each network chunk through every layer in one go before the
caller sees a byte, so `Content-Encoding: gzip, gzip` (3,477 bytes that inflate to 2 GiB) took the
crawl to 4.36 GB and blocked the event loop for 11 s (FIELD-NOTES). Here:

- the fetcher reads the raw (still encoded) bytes and feeds them to a `ContentDecoder`;
- every layer hands out its output in pieces of at most `PIECE` bytes, lazily (generators), so the
  consumer decides how much is made: it stops at max_bytes and nothing more is inflated;
- every layer but the last is also capped at `limit` bytes of output, so a layer that inflates to
  input that yields nothing (empty deflate blocks, say) cannot make us spin;
- at most `MAX_LAYERS` codings, and only the ones we can decode (`ACCEPT_ENCODING` advertises exactly
  those); anything else is refused before the body is read.

Brotli and zstd come from maintained packages (`brotli`, `zstandard`) when installed; zstd's window is
capped at 8 MiB (as browsers do), brotli's is 16 MiB by the format.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from importlib import import_module
from typing import Any

PIECE = 64 * 1024  # largest piece a zlib layer hands out at once (brotli: this plus one 32 KiB block)
MAX_LAYERS = 3  # gzip of gzip of gzip is already more than any real server sends
_ZSTD_SLICE = 128  # zstandard has no output cap: feed it this many input bytes at a time (at most ~4 MiB out)
_ZSTD_MAX_WINDOW = 1 << 23


def _optional(name: str) -> Any:
    """A decoder package, or None (it is a dependency; without it its coding is neither asked for nor accepted)."""
    try:
        return import_module(name)
    except ImportError:  # pragma: no cover
        return None


_brotli = _optional("brotli")
_zstandard = _optional("zstandard")

_ALIASES = {"x-gzip": "gzip"}
DECODABLE: tuple[str, ...] = ("gzip", "deflate") + (("br",) if _brotli else ()) + (("zstd",) if _zstandard else ())
ACCEPT_ENCODING = ", ".join(DECODABLE)


class CodingError(Exception):
    """The body cannot be decoded: an unknown or unsupported coding, too many layers, or a corrupt stream."""


class LayerTooLarge(Exception):
    """An inner layer produced more than the limit (the caller caps the outermost output itself)."""


def parse_codings(header: str | None) -> list[str]:
    """Content-Encoding as a list in the order they were applied; `identity` dropped. Raises CodingError."""
    if not header:
        return []
    codings = [
        _ALIASES.get(c, c) for c in (part.strip().lower() for part in header.split(",")) if c and c != "identity"
    ]
    unknown = [c for c in codings if c not in DECODABLE]
    if unknown:
        raise CodingError(f"unsupported Content-Encoding {', '.join(unknown)} (we decode {ACCEPT_ENCODING})")
    if len(codings) > MAX_LAYERS:
        raise CodingError(f"{len(codings)} stacked Content-Encodings (at most {MAX_LAYERS})")
    return codings


class _ZlibLayer:
    """gzip (several members allowed, as RFC 1952 does) or deflate (zlib-wrapped, or raw as some servers send)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._d = self._new()
        self._first = True
        self._done = False

    def _new(self, raw: bool = False) -> Any:
        if self.coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._done:
            if self._d.eof:  # a stream ended before these bytes: another gzip member, or trailing junk
                if self.coding == "gzip" and b"\x1f\x8b".startswith(data[:2]):
                    self._d = self._new()
                else:
                    self._done = True  # ignored, as browsers do
                    return
            try:
                out = self._d.decompress(data, PIECE)
            except zlib.error as exc:
                if self.coding == "deflate" and self._first:  # not zlib-wrapped: raw deflate
                    self._first = False
                    self._d = self._new(raw=True)
                    continue
                raise CodingError(f"{self.coding}: {exc}") from None
            self._first = False
            if out:
                yield out
            data = self._left()
            while not data and len(out) == PIECE and not self._d.eof:  # output pending with all input taken
                out = self._d.decompress(b"", PIECE)
                if out:
                    yield out
                data = self._left()

    def _left(self) -> bytes:
        return self._d.unused_data if self._d.eof else self._d.unconsumed_tail


class _BrotliLayer:
    def __init__(self) -> None:
        assert _brotli is not None
        self._d = _brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        if d.is_finished():
            return
        try:
            # The limit stops the output buffer growing (it may pass it by one internal block, 32 KiB); what
            # is left stays inside the decoder and comes out of calls with empty input, until one gives nothing.
            out = d.process(data, output_buffer_limit=PIECE)
            while out:
                yield out
                if d.is_finished():
                    return
                out = d.process(b"", output_buffer_limit=PIECE)
        except _brotli.error as exc:
            raise CodingError(f"br: {exc}") from None


class _ZstdLayer:
    def __init__(self) -> None:
        assert _zstandard is not None
        self._d = _zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW).decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), _ZSTD_SLICE):
            if self._d.eof:
                return
            try:
                out = self._d.decompress(view[start : start + _ZSTD_SLICE])
            except _zstandard.ZstdError as exc:
                raise CodingError(f"zstd: {exc}") from None
            if out:
                yield out


def _layer(coding: str) -> Any:
    if coding in ("gzip", "deflate"):
        return _ZlibLayer(coding)
    if coding == "br":
        return _BrotliLayer()
    return _ZstdLayer()


class ContentDecoder:
    """Feed raw body bytes, iterate decoded pieces. `codings` in the order applied (as parse_codings gives);
    inner layers are capped at `limit` bytes each (LayerTooLarge); the caller caps what it keeps."""

    def __init__(self, codings: list[str], limit: int) -> None:
        self.layers = [_layer(c) for c in reversed(codings)]  # the last applied is undone first
        self.codings = codings
        self.limit = limit
        self._made = [0] * len(self.layers)

    @property
    def identity(self) -> bool:
        return not self.layers

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if not self.layers:
            if raw:
                yield raw
            return
        yield from self._through(raw, 0)

    def _through(self, data: bytes, i: int) -> Iterator[bytes]:
        last = i == len(self.layers) - 1
        for piece in self.layers[i].feed(data):
            self._made[i] += len(piece)
            if last:
                yield piece
                continue
            if self._made[i] > self.limit:
                raise LayerTooLarge(f"layer {i + 1} of {'+'.join(self.codings)} inflated past {self.limit} bytes")
            yield from self._through(piece, i + 1)
