"""Keys for duplicate detection: an exact content hash and a 64-bit simhash for near-duplicates."""
from __future__ import annotations

import hashlib
import unicodedata

__all__ = ["content_hash", "simhash", "hamming", "normalise_for_hash"]

_MASK = (1 << 64) - 1
_SHINGLE = 4


def normalise_for_hash(text: str) -> str:
    """NFKC, whitespace removed: the same article spaced or width-folded differently hashes equal."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def content_hash(text: str) -> str:
    """sha256 hex of the NFKC text without whitespace."""
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()


def simhash(text: str) -> int:
    """Unsigned 64-bit simhash over 4-character shingles of the normalised text.

    Characters rather than words because Chinese has no spaces; near-duplicate republications
    (one banner or sentence changed) land within a few bits of each other.
    """
    norm = normalise_for_hash(text).lower()
    if not norm:
        return 0
    if len(norm) < _SHINGLE:
        shingles = [norm]
    else:
        shingles = [norm[i : i + _SHINGLE] for i in range(len(norm) - _SHINGLE + 1)]
    hashes = {hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest() for s in set(shingles)}
    # one 64-char bit string per shingle, concatenated: column i is bits[i::64] (counted in C)
    bits = "".join(format(int.from_bytes(h, "big"), "064b") for h in hashes)
    half = len(hashes) / 2
    value = 0
    for position in range(64):
        if bits[position::64].count("1") > half:
            value |= 1 << (63 - position)
    return value & _MASK


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & _MASK).bit_count()
