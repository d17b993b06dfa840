"""Quality metrics for extracted text, pure functions shared by tests and `sieve eval`.

Two bag-of-units scores, because order hardly matters for telling article from boilerplate and
bags are robust to how an extractor breaks lines:

* `char_scores`: character level, whitespace and punctuation ignored (our golden corpus).
* `token_scores`: the public benchmarks' metric (../shared/evaldata/README.md): one token per CJK
  character, English lowercased words, so our numbers compare with the table published there.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

from extractors.lines import TOKEN

__all__ = ["Scores", "char_scores", "token_scores", "leaked_lines", "char_units", "tokens"]


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float


def _is_counted(ch: str) -> bool:
    """True for letters, digits and symbols; False for whitespace and punctuation."""
    cat = unicodedata.category(ch)
    return not (cat[0] in "PZC" or ch.isspace())


def char_units(text: str) -> Counter[str]:
    """Multiset of the characters that carry content (NFKC, case kept)."""
    return Counter(ch for ch in unicodedata.normalize("NFKC", text) if _is_counted(ch))


def tokens(text: str) -> Counter[str]:
    """Bag of tokens: each CJK character alone, other runs of word characters lowercased."""
    return Counter(m.group(0) for m in TOKEN.finditer(unicodedata.normalize("NFKC", text).lower()))


def _prf(got: Counter[str], want: Counter[str]) -> Scores:
    if not got and not want:
        return Scores(1.0, 1.0, 1.0)
    overlap = sum((got & want).values())
    precision = overlap / sum(got.values()) if got else 0.0
    recall = overlap / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


def char_scores(extracted: str, expected: str) -> Scores:
    """Character-level precision, recall and F1 (whitespace and punctuation ignored)."""
    return _prf(char_units(extracted), char_units(expected))


def token_scores(extracted: str, expected: str) -> Scores:
    """Bag-of-tokens precision, recall and F1 as in the public benchmarks' README."""
    return _prf(tokens(extracted), tokens(expected))


def _squash(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace())


def leaked_lines(extracted: str, boilerplate: list[str] | tuple[str, ...]) -> list[str]:
    """The boilerplate snippets that still occur in the extracted text (whitespace ignored)."""
    squashed = _squash(extracted)
    return [line for line in boilerplate if _squash(line) and _squash(line) in squashed]
