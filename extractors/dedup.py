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
    # one 64-bit hash per distinct shingle, all packed into one big integer; the number of hashes
    # with bit i set is then one AND and one popcount on that integer (C speed, no per-bit loop)
    digests = [hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest() for s in set(shingles)]
    packed = int.from_bytes(b"".join(digests), "big")
    count = len(digests)
    value = 0
    lowest = int.from_bytes(b"\x00\x00\x00\x00\x00\x00\x00\x01" * count, "big")  # bit 0 of every slot
    for bit in range(64):
        if (packed & (lowest << bit)).bit_count() * 2 > count:
            value |= 1 << bit
    return value & _MASK


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & _MASK).bit_count()
