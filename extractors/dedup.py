"""Keys for duplicate detection: an exact content hash and a 64-bit simhash for near-duplicates."""

from __future__ import annotations

import hashlib
import unicodedata

from extractors.lines import TOKEN

__all__ = ["content_hash", "simhash", "hash_keys", "hamming", "normalise_for_hash"]

_MASK = (1 << 64) - 1  # hamming's operands
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
    return _simhash_normalised(normalise_for_hash_keep_spaces(text))


def hash_keys(text: str) -> tuple[str, int]:
    """content_hash(text), simhash(text), normalising the text once for both."""
    normal = unicodedata.normalize("NFKC", text)
    return hashlib.sha256("".join(normal.split()).encode("utf-8")).hexdigest(), _simhash_normalised(normal)


_BYTE_BITS = tuple(range(8))


def _simhash_normalised(normal: str) -> int:
    words = TOKEN.findall(normal.lower())
    if not words:
        return 0
    if len(words) < _SHINGLE:
        shingles = {"\x1f".join(words)}
    else:
        shingles = set(map("\x1f".join, zip(words, words[1:], words[2:], strict=False)))
    # one 64-bit hash per distinct shingle; bit i of the simhash is set when most hashes have
    # it. Counted per byte column (every hash's byte j, packed into one integer): one AND and
    # one popcount per bit on integers of n bytes, in C, no loop over the hashes
    blake = hashlib.blake2b
    digests = b"".join([blake(s.encode("utf-8"), digest_size=8).digest() for s in shingles])
    count = len(shingles)
    masks = [int.from_bytes(bytes((1 << bit,)) * count, "big") for bit in _BYTE_BITS]
    value = 0
    for byte in range(8):
        column = int.from_bytes(digests[byte::8], "big")
        shift = 8 * (7 - byte)  # byte 0 of a digest holds its bits 63..56
        for bit in _BYTE_BITS:
            if (column & masks[bit]).bit_count() * 2 > count:
                value |= 1 << (shift + bit)
    return value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & _MASK).bit_count()
