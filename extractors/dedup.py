"""Keys for duplicate detection: an exact content hash and a 64-bit simhash for near-duplicates."""
from __future__ import annotations

import hashlib
import unicodedata

from extractors.lines import TOKEN

__all__ = ["content_hash", "simhash", "hamming", "normalise_for_hash"]

_MASK = (1 << 64) - 1
_SHINGLE = 3


def normalise_for_hash(text: str) -> str:
    """NFKC, whitespace removed: the same article spaced or width-folded differently hashes equal."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def normalise_for_hash_keep_spaces(text: str) -> str:
    """NFKC only: word boundaries matter for simhash's tokens."""
    return unicodedata.normalize("NFKC", text)


def content_hash(text: str) -> str:
    """sha256 hex of the NFKC text without whitespace."""
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()


def simhash(text: str) -> int:
    """Unsigned 64-bit simhash over shingles of 3 tokens (a token is one CJK character or one
    word of another script, as in scoring.tokens).

    Characters for Chinese because it has no spaces, words elsewhere so English costs a fifth
    of the hashing; near-duplicate republications (a banner or a sentence changed) land within
    a few bits of each other.
    """
    words = TOKEN.findall(normalise_for_hash_keep_spaces(text).lower())
    if not words:
        return 0
    if len(words) < _SHINGLE:
        shingles = ["\x1f".join(words)]
    else:
        shingles = ["\x1f".join(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)]
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
