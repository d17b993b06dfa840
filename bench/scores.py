"""F1 against gold text: sieve's own metrics (extractors/scoring.py) when present, else a bag-of-chars F1."""
from __future__ import annotations

import unicodedata
from collections import Counter


def _fallback_f1(got: str, want: str) -> float:
    def bag(text: str) -> Counter[str]:
        return Counter(ch for ch in unicodedata.normalize("NFKC", text)
                       if not (ch.isspace() or unicodedata.category(ch)[0] in "PZC"))

    g, w = bag(got), bag(want)
    if not g and not w:
        return 1.0
    overlap = sum((g & w).values())
    if not overlap:
        return 0.0
    p, r = overlap / sum(g.values()), overlap / sum(w.values())
    return 2 * p * r / (p + r)


def f1(got: str | None, want: str, metric: str) -> float:
    """metric "char": characters without whitespace/punctuation (sieve eval); "token": evaldata README's tokens."""
    got = got or ""
    try:
        from extractors import scoring
    except ImportError:
        return _fallback_f1(got, want)
    if metric == "token" and hasattr(scoring, "token_scores"):
        return scoring.token_scores(got, want).f1
    if hasattr(scoring, "char_scores"):
        return scoring.char_scores(got, want).f1
    return _fallback_f1(got, want)


def metric_name(metric: str) -> str:
    try:
        from extractors import scoring  # noqa: F401

        return {"char": "char F1 (extractors.scoring)", "token": "token F1 (extractors.scoring)"}[metric]
    except ImportError:
        return "bag-of-chars F1 (bench fallback)"
